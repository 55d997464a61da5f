// The rollout server's admin weight endpoints: background reloads and their
// status, checksums, perturbation, and updates pushed by a trainer (one
// UpdateParams, or a stream of chunks). Routed and screened in
// rollout_server.cc.
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/format.h"
#include "sampler/server/api_json.h"
#include "sampler/server/http_reply.h"
#include "sampler/server/rollout_server.h"

namespace rlrt {
namespace {

using nlohmann::json;

json ChecksumJson(const LeafChecksums& c) {
  return {{"float64_sum", c.float64_sum},
          {"content_hash", HexU64(c.content_hash)}};
}

// A refused weight update: 409 when it conflicts with the versions (not
// newer, or another stream in progress), 400 when the update itself is bad
// (a payload that does not match its own hash is the request's corruption,
// not the server's), with the version still in force.
void SendUpdateRefusal(const Status& status, uint64_t version_in_force,
                       httplib::Response& res) {
  const StatusCode code = status.code();
  const int http = code == StatusCode::kFailedPrecondition ? 409
                   : code == StatusCode::kDataLoss         ? 400
                                                   : HttpStatusFor(status);
  json body = ErrorBody(status, http);
  body["ok"] = false;
  body["version"] = version_in_force;
  SendJson(res, body, http);
}

json StreamProgress(const UpdateStreamStatus& st) {
  return {{"active", st.active},
          {"stream_version", st.version},
          {"chunks_received", st.chunks_received},
          {"num_chunks", st.num_chunks},
          {"bytes_received", st.bytes_received},
          {"total_bytes", st.total_bytes},
          {"streams_committed", st.streams_committed},
          {"streams_failed", st.streams_failed},
          {"last_error", st.last_error}};
}

template <typename Message>
bool ParseProtobufBody(const std::string& text, Message* message,
                       httplib::Response& res) {
  if (text.size() <= static_cast<size_t>(INT32_MAX) &&
      message->ParseFromArray(text.data(), static_cast<int>(text.size())))
    return true;
  SendError(res, InvalidArgumentError("malformed or truncated " +
                                      message->GetTypeName() + " (" +
                                      std::to_string(text.size()) + " bytes)"));
  return false;
}

// The reply to an update applied (whole, or a stream's commit).
json AppliedBody(const ApplyReport& applied, double stall_ms) {
  return {{"ok", true},
          {"version", applied.version},
          {"bytes_copied", applied.bytes_copied},
          {"elapsed_us", applied.elapsed_us},
          {"stall_ms", stall_ms}};
}

}  // namespace

void RolloutServer::HandleReloadWeights(Body text, httplib::Response& res) {
  std::optional<json> body = ParseBody(text, res);
  if (!body) return;
  const json& b = *body;
  if (!b.contains("model_path") || !b["model_path"].is_string())
    return SendError(res,
                     InvalidArgumentError("\"model_path\" (string) is needed"));
  std::string load_format = "safetensors";
  if (b.contains("load_format")) {
    if (!b["load_format"].is_string())
      return SendError(
          res, InvalidArgumentError("\"load_format\" must be a string"));
    load_format = b["load_format"].get<std::string>();
  }
  uint64_t seed = 0;
  if (b.contains("seed")) {
    if (!b["seed"].is_number_unsigned())
      return SendError(
          res, InvalidArgumentError("\"seed\" must be a non-negative integer"));
    seed = b["seed"].get<uint64_t>();
  }
  std::optional<uint64_t> version;
  if (b.contains("weight_version")) {
    if (!b["weight_version"].is_number_unsigned())
      return SendError(
          res, InvalidArgumentError("\"weight_version\" must be a non-negative "
                                    "integer"));
    version = b["weight_version"].get<uint64_t>();
    const uint64_t in_force = engine_->Stats().weight_version;
    if (*version < in_force)
      return SendError(
          res,
          FailedPreconditionError("weight_version " + std::to_string(*version) +
                                  " is older than the version in force (" +
                                  std::to_string(in_force) + ")"),
          409);
  }
  Status started = reloader_.Start(b["model_path"].get<std::string>(),
                                   load_format, seed, version);
  if (!started.ok()) {
    return SendError(res, started,
                     started.code() == StatusCode::kFailedPrecondition
                         ? 409
                         : HttpStatusFor(started));
  }
  SendJson(res,
           {{"status", "loading"},
            {"model_path", b["model_path"]},
            {"load_format", load_format}},
           202);
}

void RolloutServer::HandleReloadStatus(httplib::Response& res) {
  const ReloadStatus s = reloader_.status();
  json body = {{"state", ReloadStateName(s.state)},
               {"model_path", s.model_path},
               {"load_format", s.load_format},
               {"version", s.version},
               {"weight_version", engine_->Stats().weight_version},
               {"load_seconds", s.load_seconds},
               {"apply_seconds", s.apply_seconds},
               {"reloads_done", s.reloads_done},
               {"reloads_failed", s.reloads_failed}};
  if (!s.error.empty()) body["error"] = s.error;
  SendJson(res, body);
}

void RolloutServer::HandleChecksum(httplib::Response& res) {
  StatusOr<LeafChecksums> sums = engine_->WeightsChecksum();
  if (!sums.ok()) return SendError(res, sums.status());
  json body = ChecksumJson(*sums);
  body["weight_version"] = engine_->Stats().weight_version;
  SendJson(res, body);
}

void RolloutServer::HandlePerturb(Body text, httplib::Response& res) {
  std::optional<json> body = ParseBody(text, res);
  if (!body) return;
  const json& b = *body;
  uint64_t seed = 0;
  double scale = 1e-3;
  int64_t num_leaves = 1 << 30;
  if (b.contains("seed")) {
    if (!b["seed"].is_number_unsigned())
      return SendError(
          res, InvalidArgumentError("\"seed\" must be a non-negative integer"));
    seed = b["seed"].get<uint64_t>();
  }
  if (b.contains("scale")) {
    if (!b["scale"].is_number() || !(b["scale"].get<double>() >= 0))
      return SendError(res,
                       InvalidArgumentError("\"scale\" must be a number >= 0"));
    scale = b["scale"].get<double>();
  }
  if (b.contains("num_leaves")) {
    if (!b["num_leaves"].is_number_unsigned())
      return SendError(
          res, InvalidArgumentError("\"num_leaves\" must be a non-negative "
                                    "integer"));
    num_leaves = b["num_leaves"].get<int64_t>();
  }
  StatusOr<PerturbReport> report =
      engine_->PerturbWeights(seed, scale, num_leaves);
  if (!report.ok()) return SendError(res, report.status());
  SendJson(res, {{"before", ChecksumJson(report->before)},
                 {"after", ChecksumJson(report->after)},
                 {"checksum_delta",
                  report->after.float64_sum - report->before.float64_sum},
                 {"weight_version", engine_->Stats().weight_version}});
}

void RolloutServer::HandleUpdateParams(Body text, httplib::Response& res) {
  // The engine parses into one reused message; it serialises callers.
  std::string lora_name;
  StatusOr<ApplyReport> applied =
      engine_->UpdateParamsSerialized(text, &lora_name);
  if (!applied.ok()) {
    // The version in force of what the update was for: the base, or the
    // adapter it named (0 when that adapter is not loaded).
    uint64_t in_force = engine_->Stats().weight_version;
    if (!lora_name.empty()) {
      StatusOr<uint64_t> adapter = engine_->AdapterVersion(lora_name);
      in_force = adapter.ok() ? *adapter : 0;
    }
    return SendUpdateRefusal(applied.status(), in_force, res);
  }
  json body = AppliedBody(*applied, engine_->Stats().last_update_stall_ms);
  if (!lora_name.empty()) {
    body["lora_name"] = lora_name;
    body["content_hash"] = HexU64(applied->content_hash);
  }
  SendJson(res, body);
}

void RolloutServer::SendStreamStep(const Status& step, httplib::Response& res) {
  if (!step.ok())
    return SendUpdateRefusal(step, engine_->Stats().weight_version, res);
  json body = StreamProgress(stream_receiver_.status());
  body["ok"] = true;
  SendJson(res, body);
}

void RolloutServer::HandleStreamBegin(Body text, httplib::Response& res) {
  proto::UpdateStreamBegin begin;
  if (!ParseProtobufBody(text, &begin, res)) return;
  SendStreamStep(stream_receiver_.Begin(begin), res);
}

void RolloutServer::HandleStreamChunk(Body text, httplib::Response& res) {
  // Parsed by the receiver into one reused message.
  SendStreamStep(stream_receiver_.AddSerializedChunk(text), res);
}

void RolloutServer::HandleStreamCommit(Body text, httplib::Response& res) {
  proto::UpdateStreamCommit commit;
  if (!ParseProtobufBody(text, &commit, res)) return;
  StatusOr<ApplyReport> applied = stream_receiver_.Commit(commit);
  if (!applied.ok())
    return SendUpdateRefusal(applied.status(), engine_->Stats().weight_version,
                             res);
  json body = AppliedBody(*applied, engine_->Stats().last_update_stall_ms);
  body["content_hash"] = HexU64(applied->content_hash);
  SendJson(res, body);
}

void RolloutServer::HandleStreamAbort(Body text, httplib::Response& res) {
  std::optional<json> body = ParseBody(text, res);
  if (!body) return;
  if (!body->is_object() || !body->contains("version") ||
      !(*body)["version"].is_number_unsigned())
    return SendError(res, InvalidArgumentError(
                              "expected {\"version\": <unsigned integer>}"));
  const Status aborted =
      stream_receiver_.Abort((*body)["version"].get<uint64_t>());
  if (!aborted.ok()) return SendError(res, aborted);
  SendJson(res, {{"ok", true}});
}

void RolloutServer::HandleStreamStatus(httplib::Response& res) {
  json body = StreamProgress(stream_receiver_.status());
  body["version"] = engine_->Stats().weight_version;
  SendJson(res, body);
}

}  // namespace rlrt
