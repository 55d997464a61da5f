#include "trainer_bridge/remote/remote_rollouts.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/format.h"
#include "base/timing.h"
#include "models/lora/lora_config.h"
#include "trainer_bridge/update_builder.h"
#include "trainer_bridge/update_stream_builder.h"

namespace rlrt {
namespace {

// GET /v1/models on `url`: the vocabulary the server samples from.
StatusOr<int64_t> ServerVocab(const std::string& url) {
  httplib::Client http(url);
  http.set_connection_timeout(5, 0);
  auto res = http.Get("/v1/models");
  if (!res || res->status != 200)
    return UnavailableError("GET " + url + "/v1/models failed");
  const nlohmann::json body =
      nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.contains("data") ||
      !body["data"].is_array() || body["data"].empty() ||
      !body["data"][0].contains("vocab_size") ||
      !body["data"][0]["vocab_size"].is_number_integer())
    return DataLossError(url + "/v1/models has no data[0].vocab_size");
  return body["data"][0]["vocab_size"].get<int64_t>();
}

}  // namespace

StatusOr<std::unique_ptr<RemoteRollouts>> RemoteRollouts::Create(
    const RolloutClientOptions& options, Mesh* trainer_mesh) {
  ASSIGN_OR_RETURN(std::unique_ptr<RolloutClient> client,
                   RolloutClient::Create(options));
  int64_t vocab = -1;
  for (const std::string& url : client->urls()) {
    ASSIGN_OR_RETURN(int64_t v, ServerVocab(url));
    if (vocab >= 0 && v != vocab)
      return FailedPreconditionError(
          "the rollout servers sample from different vocabularies (" +
          std::to_string(vocab) + " and " + std::to_string(v) + " at " + url +
          ")");
    vocab = v;
  }
  return std::unique_ptr<RemoteRollouts>(
      new RemoteRollouts(std::move(client), trainer_mesh, vocab));
}

StatusOr<RequestHandle> RemoteRollouts::Submit(GenerateRequest request) {
  return client_->Submit(request);
}

namespace {

// The weight version of every server that answers /get_load and is not
// behind; a server that does not answer is marked behind. Unavailable when
// none is left.
StatusOr<std::vector<uint64_t>> Versions(RolloutClient& client) {
  std::vector<uint64_t> versions;
  std::string unreachable;
  const std::vector<ServerResult> loads = client.Loads();
  for (size_t i = 0; i < loads.size(); ++i) {
    const ServerResult& r = loads[i];
    if (r.http_status == 0) {
      client.MarkBehind(i);
      unreachable += (unreachable.empty() ? "" : "; ") + r.status.ToString();
      continue;
    }
    RETURN_IF_ERROR(r.status);
    if (!r.reply.contains("weight_version") ||
        !r.reply["weight_version"].is_number_unsigned())
      return DataLossError(r.url + "/get_load has no weight_version");
    if (!client.IsBehind(i))
      versions.push_back(r.reply["weight_version"].get<uint64_t>());
  }
  if (versions.empty())
    return UnavailableError("no rollout server is reachable and up to date" +
                            (unreachable.empty() ? "" : ": " + unreachable));
  return versions;
}

}  // namespace

StatusOr<uint64_t> RemoteRollouts::WeightVersion() {
  ASSIGN_OR_RETURN(std::vector<uint64_t> v, Versions(*client_));
  return *std::min_element(v.begin(), v.end());
}

StatusOr<uint64_t> RemoteRollouts::NewestWeightVersion() {
  ASSIGN_OR_RETURN(std::vector<uint64_t> v, Versions(*client_));
  return *std::max_element(v.begin(), v.end());
}

StatusOr<SyncReport> RemoteRollouts::PushWeights(const ParamLeaves& weights,
                                                 uint64_t version) {
  SyncReport report;
  const SteadyClock::time_point start = SteadyClock::now();
  // A new buffer each push: the client keeps the last one for servers that
  // catch up later.
  auto update = std::make_shared<WireUpdate>();
  const size_t chunk_bytes = client_->options().update_chunk_bytes;
  if (weights.total_bytes() > chunk_bytes) {
    StreamBuildOptions stream;
    stream.chunk_bytes = chunk_bytes;
    stream.flush_cache = true;
    ASSIGN_OR_RETURN(*update, SerializeUpdateStream(weights, version, stream,
                                                    trainer_mesh_));
  } else {
    BuildOptions build;
    build.include_content_hash = true;
    build.flush_cache = true;
    RETURN_IF_ERROR(
        BuildUpdateParams(weights, version, build, trainer_mesh_, &message_));
    *update = WireUpdate::Single(version, std::string());
    update->content_hash = message_.expected_content_hash();
    if (!message_.SerializeToString(&update->message))
      return InternalError("cannot serialize the UpdateParams");
  }
  report.content_hash = update->content_hash;
  report.build_ms = MillisecondsSince(start);

  const SteadyClock::time_point apply_start = SteadyClock::now();
  std::string refused, unreachable;
  const std::vector<ServerResult> results = client_->BroadcastUpdate(*update);
  std::vector<bool> holds(results.size(), false);
  for (size_t i = 0; i < results.size(); ++i) {
    const ServerResult& r = results[i];
    if (r.http_status == 0) {
      // Down (maybe restarting): it catches up when it answers again.
      client_->MarkBehind(i);
      unreachable += (unreachable.empty() ? "" : "; ") + r.status.ToString();
      continue;
    }
    // 409: it holds this version or a newer one already (a catch-up or a
    // reload got there first); the checksum below says whether it is ours.
    if (!r.status.ok() && r.http_status != 409) {
      refused +=
          (refused.empty() ? "" : "; ") + r.url + ": " + r.status.ToString();
      continue;
    }
    holds[i] = true;
    report.bytes = r.reply.value("bytes_copied", report.bytes);
    report.stall_ms = std::max(report.stall_ms, r.reply.value("stall_ms", 0.0));
  }
  if (!refused.empty())
    return FailedPreconditionError("weight push to version " +
                                   std::to_string(version) +
                                   " refused: " + refused);
  if (std::find(holds.begin(), holds.end(), true) == holds.end())
    return UnavailableError(
        "weight push to version " + std::to_string(version) +
        ": no rollout server could be reached: " + unreachable);
  client_->SetRequiredWeights(version, std::move(update));
  report.apply_ms = MillisecondsSince(apply_start);
  report.version = version;

  const SteadyClock::time_point verify_start = SteadyClock::now();
  const std::string want = HexU64(report.content_hash);
  const std::vector<ServerResult> sums = client_->Checksums();
  for (size_t i = 0; i < sums.size(); ++i) {
    const ServerResult& r = sums[i];
    if (!holds[i]) continue;
    if (r.http_status == 0) {
      client_->MarkBehind(i);
      continue;
    }
    RETURN_IF_ERROR(r.status);
    if (r.reply.value("content_hash", std::string()) != want)
      return DataLossError("after the push to version " +
                           std::to_string(version) + ", " + r.url +
                           " holds content hash " +
                           r.reply.value("content_hash", std::string("?")) +
                           ", the trainer " + want);
  }
  report.verify_ms = MillisecondsSince(verify_start);
  report.total_ms = MillisecondsSince(start);
  return report;
}

StatusOr<uint64_t> RemoteRollouts::AdapterVersion(std::string_view name) {
  uint64_t oldest = std::numeric_limits<uint64_t>::max();
  for (const ServerResult& r : client_->Models()) {
    RETURN_IF_ERROR(r.status);
    uint64_t held = 0;
    const nlohmann::json* data =
        r.reply.contains("data") ? &r.reply["data"] : nullptr;
    if (data == nullptr || !data->is_array())
      return DataLossError(r.url + "/v1/models has no data list");
    for (const nlohmann::json& model : *data) {
      if (model.value("id", std::string()) == name &&
          model.contains("weight_version") &&
          model["weight_version"].is_number_unsigned()) {
        held = model["weight_version"].get<uint64_t>();
      }
    }
    oldest = std::min(oldest, held);
  }
  return oldest == std::numeric_limits<uint64_t>::max() ? 0 : oldest;
}

StatusOr<SyncReport> RemoteRollouts::PushAdapter(const LoraAdapter& adapter,
                                                 std::string_view name,
                                                 uint64_t version) {
  SyncReport report;
  const SteadyClock::time_point start = SteadyClock::now();
  BuildOptions build;
  build.include_content_hash = true;
  build.lora_name = std::string(name);
  build.lora_config_json = LoraConfigToJson(adapter.config());
  RETURN_IF_ERROR(BuildUpdateParams(adapter.leaves(), version, build,
                                    trainer_mesh_, &message_));
  WireUpdate update = WireUpdate::Single(version, std::string());
  update.content_hash = message_.expected_content_hash();
  if (!message_.SerializeToString(&update.message))
    return InternalError("cannot serialize the adapter's UpdateParams");
  report.content_hash = update.content_hash;
  report.build_ms = MillisecondsSince(start);

  const SteadyClock::time_point apply_start = SteadyClock::now();
  const std::string want = HexU64(report.content_hash);
  std::string failed;
  for (const ServerResult& r : client_->BroadcastUpdate(update)) {
    if (!r.status.ok()) {
      failed +=
          (failed.empty() ? "" : "; ") + r.url + ": " + r.status.ToString();
      continue;
    }
    // The server hashed the adapter as it wrote it.
    if (r.reply.value("content_hash", std::string()) != want) {
      return DataLossError("after the push of adapter '" + std::string(name) +
                           "' version " + std::to_string(version) + ", " +
                           r.url + " holds content hash " +
                           r.reply.value("content_hash", std::string("?")) +
                           ", the trainer " + want);
    }
    report.bytes = r.reply.value("bytes_copied", report.bytes);
    report.stall_ms = std::max(report.stall_ms, r.reply.value("stall_ms", 0.0));
  }
  if (!failed.empty()) {
    return FailedPreconditionError("push of adapter '" + std::string(name) +
                                   "' version " + std::to_string(version) +
                                   " failed: " + failed);
  }
  report.version = version;
  report.apply_ms = MillisecondsSince(apply_start);
  report.total_ms = MillisecondsSince(start);
  return report;
}

}  // namespace rlrt
