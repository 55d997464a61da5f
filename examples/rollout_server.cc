// rollout_server: SamplerEngines behind HTTP (see
// sampler/server/rollout_server.h for the endpoints).
//
//   rollout_server --preset=qwen3-tiny --port=30000
//   rollout_server --model_dir=DIR --num_servers=2 --base_port=31000
//
// With --num_servers=N the rollout devices (all devices, or the rollout mesh
// of --partition) split into N disjoint groups, one engine and one port
// (base_port + i) each. Prints one "server_ready" JSON line per server, then
// serves until SIGINT or SIGTERM.
#include "sampler/server/rollout_server.h"

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "examples/cli_support.h"
#include "examples/model_flags.h"
#include "partition/device.h"
#include "partition/partition_spec.h"
#include "sampler/engine.h"

DEFINE_string(model_dir, "", "A Hugging Face checkpoint directory.");
DEFINE_string(preset, "qwen3-tiny", "Model shape when --model_dir is empty.");
DEFINE_string(load_format, "",
              "safetensors (default with --model_dir) or dummy (default, and "
              "the only choice, with --preset).");
DEFINE_uint64(seed, 0, "Seed of dummy weights.");
DEFINE_string(tokenizer_dir, "",
              "tokenizer.json + tokenizer_config.json; empty: --model_dir if "
              "it has them, else the Qwen3 tokenizer in ../shared.");
DEFINE_string(partition, "",
              "Serve on this spec's rollout devices (e.g. "
              "'rollout=2,actor=rest'); empty: every device.");
DEFINE_int32(num_virtual_devices, 0, "Use N virtual devices (testing).");
DEFINE_int32(num_servers, 1, "Engines, each on its own devices and port.");
DEFINE_string(host, "127.0.0.1", "Address to listen on.");
DEFINE_int32(port, 30000, "Port of the first server (0: any free port).");
DEFINE_int32(base_port, 0, "With --num_servers: ports base_port + i.");
DEFINE_string(admin_token, "",
              "Bearer token for /admin/*; without one, admin endpoints are "
              "served only on a loopback --host.");
DEFINE_bool(reject_during_reload, false,
            "Answer 503 to generation requests while weights reload (the "
            "reference behaviour); default: the old weights serve them.");
DEFINE_string(model_name, "", "Name in /v1/models; empty: the model's.");
DEFINE_int64(max_running_requests, 64, "Engine: requests decoded at once.");
DEFINE_int64(max_total_tokens, 16384, "Engine: KV cache tokens.");
DEFINE_int64(page_size, 16, "Engine: KV page size.");
DEFINE_int64(context_length, 0, "Engine: longest sequence; 0: the model's.");
DEFINE_int64(max_prefill_tokens, 2048, "Engine: prefill chunk.");
DEFINE_bool(enable_prefix_cache, true, "Engine: reuse prompt prefixes.");
DEFINE_bool(release_idle_kv_memory, false,
            "Engine: give free KV pages' memory back to the kernel whenever "
            "the engine runs out of work (the next requests then fault it "
            "back in).");
DEFINE_int64(max_json_body_bytes, 8 << 20, "Largest JSON request body.");
DEFINE_int64(max_update_body_bytes, int64_t{2} << 30,
             "Largest /admin/update_params or /admin/update_stream/chunk "
             "body.");
DEFINE_int32(update_stream_idle_timeout_ms, 60000,
             "A streamed weight update with no message for this long is "
             "dropped (its staging memory freed; the old weights serve on).");
DEFINE_int32(http_threads, 32, "Requests served at once.");
DEFINE_int32(reserved_threads, 4,
             "More, only for /health, /get_load, /metrics, /v1/models and "
             "admin, so a full server still answers them.");
DEFINE_int64(max_head_bytes, 16 << 10,
             "Largest request line and headers (431 beyond).");
DEFINE_int32(head_timeout_ms, 10000,
             "Time for a request line and headers to arrive (408 after).");
DEFINE_int32(body_timeout_ms, 20000,
             "Time for a JSON body to arrive (408 after); an update body "
             "gets this plus its size at 20 MB/s.");
DEFINE_string(allowed_hosts, "",
              "Comma-separated Host values accepted besides this server's "
              "address (and, on loopback, localhost): names of a proxy or "
              "DNS names of a server bound to one address.");
DEFINE_string(allowed_origins, "",
              "Comma-separated browser origins (http://name:port) allowed "
              "besides the server's own.");

DEFINE_int64(max_loras, 4,
             "LoRA adapters resident at once (0: none); loading one more "
             "evicts the least recently used idle one.");
DEFINE_int64(max_lora_rank, 64, "Largest LoRA rank served.");
DEFINE_string(lora_modules, "",
              "Adapters to load at start: comma-separated name=directory "
              "pairs (PEFT adapter directories).");
DEFINE_string(lora_version_policy, "latest",
              "'latest': an adapter update reaches running requests at the "
              "next step; 'pin': they finish under the version they started "
              "with.");
DEFINE_int64(lora_resident_versions, 2,
             "Copies of an adapter kept under --lora_version_policy=pin.");

namespace rlrt {
namespace {

// --lora_modules: name=directory pairs.
StatusOr<std::vector<std::pair<std::string, std::string>>> LoraModules() {
  std::vector<std::pair<std::string, std::string>> modules;
  for (const std::string& item : SplitList(FLAGS_lora_modules)) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      return InvalidArgumentError("--lora_modules: '" + item +
                                  "' is not name=directory");
    modules.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return modules;
}

using nlohmann::json;

std::string TokenizerDir() {
  return ResolveTokenizerDir(FLAGS_tokenizer_dir, FLAGS_model_dir);
}

StatusOr<std::vector<Device>> RolloutDevices() {
  ASSIGN_OR_RETURN(std::vector<Device> devices,
                   DiscoverLocalDevices(FLAGS_num_virtual_devices));
  if (FLAGS_partition.empty()) return devices;
  // The partition's meshes start pinned workers; take the rollout devices
  // and let them go before the engines start their own.
  ASSIGN_OR_RETURN(Partition partition,
                   Partition::Create(FLAGS_partition, devices));
  return partition.rollout().devices();
}

struct Served {
  std::unique_ptr<Mesh> mesh;
  std::unique_ptr<SamplerEngine> engine;
  std::unique_ptr<RolloutServer> server;
};

Status Run(const sigset_t& signals) {
  if (FLAGS_num_servers < 1)
    return InvalidArgumentError("--num_servers must be >= 1");
  if (FLAGS_load_format.empty())
    FLAGS_load_format = FLAGS_model_dir.empty() ? "dummy" : "safetensors";
  ASSIGN_OR_RETURN(std::vector<Device> devices, RolloutDevices());
  if (static_cast<int>(devices.size()) < FLAGS_num_servers)
    return InvalidArgumentError(std::to_string(devices.size()) +
                                " rollout devices cannot host " +
                                std::to_string(FLAGS_num_servers) + " servers");
  std::vector<Served> servers(FLAGS_num_servers);
  const size_t per = devices.size() / FLAGS_num_servers;
  for (int i = 0; i < FLAGS_num_servers; ++i) {
    std::vector<Device> group(devices.begin() + i * per,
                              devices.begin() + (i + 1) * per);
    ASSIGN_OR_RETURN(servers[i].mesh,
                     Mesh::Create("rollout" + std::to_string(i), group));
    EngineOptions o;
    o.model.model_dir = FLAGS_model_dir;
    o.model.preset = FLAGS_model_dir.empty() ? FLAGS_preset : "";
    o.model.load_format = FLAGS_load_format;
    o.model.seed = FLAGS_seed;
    o.model.dtype = FLAGS_dtype;
    o.tokenizer_dir = TokenizerDir();
    o.max_running_requests = FLAGS_max_running_requests;
    o.max_total_tokens = FLAGS_max_total_tokens;
    o.page_size = FLAGS_page_size;
    o.kv_cache_dtype = FLAGS_kv_cache_dtype;
    o.context_length = FLAGS_context_length;
    o.max_prefill_tokens = FLAGS_max_prefill_tokens;
    o.enable_prefix_cache = FLAGS_enable_prefix_cache;
    o.release_idle_kv_memory = FLAGS_release_idle_kv_memory;
    o.max_loras = FLAGS_max_loras;
    o.max_lora_rank = FLAGS_max_lora_rank;
    o.lora_version_policy = FLAGS_lora_version_policy;
    o.lora_resident_versions = FLAGS_lora_resident_versions;
    ASSIGN_OR_RETURN(servers[i].engine,
                     SamplerEngine::Create(o, servers[i].mesh.get()));
    ASSIGN_OR_RETURN(auto modules, LoraModules());
    for (const auto& [name, dir] : modules) {
      RETURN_IF_ERROR(
          servers[i].engine->LoadAdapter(name, dir).status().WithContext(
              "--lora_modules " + name));
    }
    RolloutServerOptions so;
    so.host = FLAGS_host;
    so.port = FLAGS_num_servers > 1 || FLAGS_base_port > 0
                  ? (FLAGS_base_port > 0 ? FLAGS_base_port + i : 0)
                  : FLAGS_port;
    so.admin_token = FLAGS_admin_token;
    so.reject_during_reload = FLAGS_reject_during_reload;
    so.max_json_body_bytes = FLAGS_max_json_body_bytes;
    so.max_update_body_bytes = FLAGS_max_update_body_bytes;
    so.update_stream_idle_timeout_ms = FLAGS_update_stream_idle_timeout_ms;
    so.http_threads = FLAGS_http_threads;
    so.reserved_threads = FLAGS_reserved_threads;
    so.max_head_bytes = FLAGS_max_head_bytes;
    so.head_timeout_ms = FLAGS_head_timeout_ms;
    so.body_timeout_ms = FLAGS_body_timeout_ms;
    so.allowed_hosts = SplitList(FLAGS_allowed_hosts);
    so.allowed_origins = SplitList(FLAGS_allowed_origins);
    so.model_name =
        !FLAGS_model_name.empty() ? FLAGS_model_name
        : !FLAGS_model_dir.empty()
            ? std::filesystem::path(FLAGS_model_dir).filename().string()
            : FLAGS_preset;
    ASSIGN_OR_RETURN(servers[i].server,
                     RolloutServer::Create(servers[i].engine.get(),
                                           /*staging_mesh=*/nullptr, so));
    RETURN_IF_ERROR(servers[i].server->Start());
    if (!servers[i].server->admin_enabled())
      LOG(WARNING) << "admin endpoints disabled: " << FLAGS_host
                   << " is not loopback and --admin_token is empty";
    json devices_json = json::array();
    for (const Device& d : group) devices_json.push_back(DeviceToString(d));
    std::cout << json{{"phase", "server_ready"},
                      {"server", i},
                      {"url", "http://" + FLAGS_host + ":" +
                                  std::to_string(servers[i].server->port())},
                      {"port", servers[i].server->port()},
                      {"devices", devices_json},
                      {"admin", servers[i].server->admin_enabled()},
                      {"weight_version",
                       servers[i].engine->Stats().weight_version}}
                     .dump()
              << std::endl;
  }
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  LOG(INFO) << "signal " << signal_number << ": stopping";
  for (Served& s : servers) s.server->Stop();
  return OkStatus();
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  gflags::SetUsageMessage("Serves SamplerEngines over HTTP.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  rlrt::ReturnLargeBuffersToTheSystem();
  // Blocked before any thread starts, so only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  rlrt::Status status = rlrt::Run(signals);
  if (!status.ok()) {
    std::cerr << "rollout_server: " << status << std::endl;
    return 1;
  }
  return 0;
}
