// rollout_load: a bounded load run against rollout servers while their
// weights change underneath.
//
// Starts --num_servers in-process servers (stories260K by default, each on
// its own devices) unless --urls names running ones, then runs --clients
// concurrent clients sending /generate requests for --seconds while every
// --reload_every seconds each server gets new weights (alternately a
// perturbation pushed as a serialized UpdateParams and a checkpoint reload).
// Prints one JSON line: requests, failures, throughput, p50/p99 latency,
// weight updates, and how many completions spanned two weight versions
// (each response reports the versions it was served with). Exits 1 on any
// failed request.
//
// --hostile_clients=N adds N clients that misbehave beside the normal ones
// (examples/hostile_clients.h: slow heads and bodies, hang-ups, oversize
// bodies, endless headers, deep JSON, in rotation), and the line adds what
// they were answered and how fast /health answered meanwhile.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "base/timing.h"
#include "examples/hostile_clients.h"
#include "examples/model_flags.h"
#include "models/forward/model_source.h"
#include "models/io/checkpoint.h"
#include "models/leaf_init.h"
#include "partition/device.h"
#include "sampler/engine.h"
#include "sampler/server/rollout_server.h"
#include "trainer_bridge/update_builder.h"

DEFINE_string(urls, "",
              "Comma-separated server URLs; empty: start --num_servers "
              "in-process servers.");
DEFINE_string(model_dir, RLRT_SHARED_DIR "/models/stories260K",
              "Model of the in-process servers.");
DEFINE_int32(num_servers, 2, "In-process servers.");
DEFINE_int32(clients, 64, "Concurrent clients.");
DEFINE_double(seconds, 30, "Duration of the run.");
DEFINE_double(reload_every, 5, "Seconds between weight changes.");
DEFINE_int32(max_new_tokens, 32, "Tokens per request.");
DEFINE_int32(num_virtual_devices, 0, "Use N virtual devices.");
DEFINE_int32(hostile_clients, 0,
             "Clients that misbehave beside the normal ones (see above).");

namespace rlrt {
namespace {

using nlohmann::json;
struct Target {
  std::string host;
  int port = 0;
};

struct Counters {
  std::mutex mu;
  std::vector<double> latencies;  // Seconds, successful requests.
  int64_t failures = 0;
  int64_t tokens = 0;
  int64_t mixed_versions = 0;
  int64_t inconsistent = 0;
  std::vector<std::string> errors;
};

struct HostileCounters {
  std::mutex mu;
  std::map<std::string, int64_t> actions;   // By kind.
  std::map<std::string, int64_t> answered;  // By HTTP status ("none").
  std::vector<double> health_latencies;     // Seconds.
  int64_t health_failures = 0;
};

void HostileClient(const Target& target, int id, SteadyClock::time_point end,
                   HostileCounters& counters) {
  const int kinds = static_cast<int>(HostileKind::kCount);
  for (int round = id; SteadyClock::now() < end; ++round) {
    const HostileKind kind = static_cast<HostileKind>(round % kinds);
    const int status = RunHostileAction(kind, target.host, target.port);
    std::lock_guard<std::mutex> lock(counters.mu);
    ++counters.actions[HostileKindName(kind)];
    ++counters.answered[status < 0 ? "none" : std::to_string(status)];
  }
}

// /health every 100 ms: what an orchestrator's liveness probe would see.
void HealthProbe(const Target& target, SteadyClock::time_point end,
                 HostileCounters& counters) {
  while (SteadyClock::now() < end) {
    httplib::Client http(target.host, target.port);
    http.set_read_timeout(10, 0);
    const SteadyClock::time_point start = SteadyClock::now();
    auto res = http.Get("/health");
    const double seconds = SecondsSince(start);
    {
      std::lock_guard<std::mutex> lock(counters.mu);
      if (res && res->status == 200)
        counters.health_latencies.push_back(seconds);
      else
        ++counters.health_failures;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void Client(const Target& target, int id, SteadyClock::time_point end,
            Counters& counters) {
  httplib::Client http(target.host, target.port);
  http.set_read_timeout(120, 0);
  std::mt19937 rng(id);
  while (SteadyClock::now() < end) {
    json body = {{"input_ids", {1, int(rng() % 500) + 2, int(rng() % 500) + 2}},
                 {"sampling_params",
                  {{"max_new_tokens", FLAGS_max_new_tokens},
                   {"temperature", 1.0},
                   {"seed", rng()},
                   {"ignore_eos", true}}}};
    const SteadyClock::time_point start = SteadyClock::now();
    auto res = http.Post("/generate", body.dump(), "application/json");
    const double seconds = SecondsSince(start);
    std::lock_guard<std::mutex> lock(counters.mu);
    if (!res || res->status != 200) {
      ++counters.failures;
      if (counters.errors.size() < 5)
        counters.errors.push_back(res ? res->body
                                      : httplib::to_string(res.error()));
      continue;
    }
    json r = json::parse(res->body, nullptr, false);
    const json& meta = r["meta_info"];
    counters.latencies.push_back(seconds);
    counters.tokens += meta["completion_tokens"].get<int64_t>();
    const auto versions = meta["weight_versions"].get<std::vector<uint64_t>>();
    if (versions[0] != versions[1]) ++counters.mixed_versions;
    // The version reported for the completion is the newest it used.
    if (meta["weight_version"].get<uint64_t>() != versions[1])
      ++counters.inconsistent;
  }
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

Status Run() {
  std::vector<Target> targets;
  std::vector<std::unique_ptr<Mesh>> meshes;
  std::vector<std::unique_ptr<SamplerEngine>> engines;
  std::vector<std::unique_ptr<RolloutServer>> servers;
  if (!FLAGS_urls.empty()) {
    std::stringstream list(FLAGS_urls);
    std::string url;
    while (std::getline(list, url, ',')) {
      const size_t colon = url.rfind(':');
      const size_t host_start = url.find("://");
      if (colon == std::string::npos || host_start == std::string::npos)
        return InvalidArgumentError("bad URL " + url);
      targets.push_back({url.substr(host_start + 3, colon - host_start - 3),
                         std::atoi(url.c_str() + colon + 1)});
    }
  } else {
    ASSIGN_OR_RETURN(std::vector<Device> devices,
                     DiscoverLocalDevices(FLAGS_num_virtual_devices));
    for (int i = 0; i < FLAGS_num_servers; ++i) {
      std::vector<Device> group = {devices[i % devices.size()]};
      ASSIGN_OR_RETURN(auto mesh,
                       Mesh::Create("server" + std::to_string(i), group));
      EngineOptions o;
      o.model.model_dir = FLAGS_model_dir;
      o.max_running_requests = FLAGS_clients;
      o.max_total_tokens = 16384;
      ASSIGN_OR_RETURN(auto engine, SamplerEngine::Create(o, mesh.get()));
      RolloutServerOptions so;
      so.port = 0;
      so.http_threads = FLAGS_clients + 8;
      ASSIGN_OR_RETURN(auto server,
                       RolloutServer::Create(engine.get(), nullptr, so));
      RETURN_IF_ERROR(server->Start());
      targets.push_back({"127.0.0.1", server->port()});
      meshes.push_back(std::move(mesh));
      engines.push_back(std::move(engine));
      servers.push_back(std::move(server));
    }
  }

  // New weights for the run: the checkpoint perturbed, as a checkpoint on
  // disk (for reloads) and as UpdateParams (for pushes).
  ASSIGN_OR_RETURN(LoadedModel model, LoadModel({.model_dir = FLAGS_model_dir,
                                                 .preset = "",
                                                 .load_format = "auto",
                                                 .seed = 0,
                                                 .dtype = FLAGS_dtype},
                                                nullptr));
  const std::filesystem::path checkpoint =
      std::filesystem::temp_directory_path() /
      ("rlrt_load_" + std::to_string(getpid()));
  RETURN_IF_ERROR(Perturb(model.weights, 1, 0.01, 1 << 20, nullptr));
  RETURN_IF_ERROR(SaveCheckpoint(model.weights, model.config, checkpoint));

  Counters counters;
  const SteadyClock::time_point start = SteadyClock::now();
  const SteadyClock::time_point end =
      start + std::chrono::milliseconds(int64_t(FLAGS_seconds * 1000));
  std::vector<std::thread> clients;
  for (int c = 0; c < FLAGS_clients; ++c)
    clients.emplace_back(Client, std::cref(targets[c % targets.size()]), c, end,
                         std::ref(counters));
  HostileCounters hostile;
  std::vector<std::thread> hostile_clients;
  for (int c = 0; c < FLAGS_hostile_clients; ++c)
    hostile_clients.emplace_back(HostileClient,
                                 std::cref(targets[c % targets.size()]), c, end,
                                 std::ref(hostile));
  for (const Target& t : targets)
    clients.emplace_back(HealthProbe, std::cref(t), end, std::ref(hostile));

  int64_t updates = 0, update_failures = 0;
  uint64_t version = 1000;  // Above anything the servers hold.
  proto::UpdateParams update;
  for (int round = 0;
       SteadyClock::now() +
           std::chrono::milliseconds(int64_t(FLAGS_reload_every * 1000)) <
       end;
       ++round) {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(int64_t(FLAGS_reload_every * 1000)));
    for (const Target& t : targets) {
      httplib::Client admin(t.host, t.port);
      admin.set_read_timeout(120, 0);
      // Pushes step by 10 so the version a reload takes (current + 1) stays
      // below the next push's.
      const bool push = round % 2 == 0;
      if (push) {
        RETURN_IF_ERROR(
            Perturb(model.weights, 100 + round, 0.001, 1 << 20, nullptr));
        version += 10;
        RETURN_IF_ERROR(BuildUpdateParams(model.weights, version,
                                          {.include_content_hash = true,
                                           .flush_cache = true,
                                           .return_checksums = false},
                                          nullptr, &update));
      }
      httplib::Result res =
          push ? admin.Post("/admin/update_params", update.SerializeAsString(),
                            "application/x-protobuf")
               : admin.Post("/admin/reload_weights",
                            json{{"model_path", checkpoint.string()}}.dump(),
                            "application/json");
      ++updates;
      if (!res || (res->status != 200 && res->status != 202)) {
        ++update_failures;
        LOG(WARNING) << "weight change failed: "
                     << (res ? res->body : httplib::to_string(res.error()));
      }
    }
  }
  for (std::thread& t : clients) t.join();
  const double seconds = SecondsSince(start);
  // A hostile action started near the end runs to its deadline; it is
  // counted but not in the run's duration.
  for (std::thread& t : hostile_clients) t.join();
  for (auto& s : servers) s->Stop();
  std::filesystem::remove_all(checkpoint);

  const json line = {
      {"phase", "load_run"},
      {"servers", targets.size()},
      {"clients", FLAGS_clients},
      {"seconds", seconds},
      {"requests", counters.latencies.size() + counters.failures},
      {"failed_requests", counters.failures},
      {"errors", counters.errors},
      {"requests_per_s", counters.latencies.size() / seconds},
      {"tokens_per_s", counters.tokens / seconds},
      {"latency_p50_s", Percentile(counters.latencies, 0.5)},
      {"latency_p99_s", Percentile(counters.latencies, 0.99)},
      {"weight_changes", updates},
      {"weight_change_failures", update_failures},
      {"completions_spanning_two_versions", counters.mixed_versions},
      {"inconsistent_version_reports", counters.inconsistent},
      {"hostile_clients", FLAGS_hostile_clients},
      {"hostile_actions", hostile.actions},
      {"hostile_answered", hostile.answered},
      {"health_probes", hostile.health_latencies.size()},
      {"health_failures", hostile.health_failures},
      {"health_p99_s", Percentile(hostile.health_latencies, 0.99)},
      {"health_max_s", Percentile(hostile.health_latencies, 1.0)}};
  std::cout << line.dump() << std::endl;
  if (counters.failures > 0 || counters.inconsistent > 0 ||
      update_failures > 0 || hostile.health_failures > 0)
    return InternalError("the load run had failures");
  return OkStatus();
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  rlrt::Status status = rlrt::Run();
  if (!status.ok()) {
    std::cerr << "rollout_load: " << status << std::endl;
    return 1;
  }
  return 0;
}
