// rollout_admin: admin calls on one or more rollout servers at once.
//
//   rollout_admin --base_url=http://127.0.0.1:31000,http://127.0.0.1:31001
//       checksum | load
//       | perturb --seed=1 --scale=0.01 --num_leaves=2
//       | reload --model_path=DIR [--load_format=safetensors] [--wait=true]
//
// Prints one JSON line per server, {"url", "ok", "reply"} (plus "error" when
// it failed), and exits 0 only when every server succeeded.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "examples/cli_support.h"
#include "sampler/server/api_json.h"
#include "trainer_bridge/remote/rollout_client.h"

DEFINE_string(base_url, "http://127.0.0.1:30000",
              "Rollout servers: comma-separated http://host:port URLs.");
DEFINE_string(admin_token, "", "Bearer token for the admin endpoints.");
DEFINE_uint64(seed, 0, "perturb: the noise seed.");
DEFINE_double(scale, 1e-3, "perturb: the noise standard deviation.");
DEFINE_int64(num_leaves, 1 << 30, "perturb: how many leaves (from the first).");
DEFINE_string(model_path, "", "reload: the checkpoint directory.");
DEFINE_string(load_format, "safetensors", "reload: safetensors or dummy.");
DEFINE_bool(wait, true, "reload: wait until every server has finished.");
DEFINE_double(timeout_seconds, 600, "Per call (and per reload with --wait).");

namespace rlrt {
namespace {

constexpr char kUsage[] =
    "usage: rollout_admin --base_url=http://host:port[,...] "
    "checksum|perturb|reload|load [flags]";

int Run(const std::string& command) {
  RolloutClientOptions options;
  options.urls = SplitList(FLAGS_base_url);
  options.admin_token = FLAGS_admin_token;
  options.request_timeout_seconds = FLAGS_timeout_seconds;
  options.worker_threads = 1;
  // An unreachable server gets its own failed line below.
  options.check_health = false;
  auto client = RolloutClient::Create(options);
  if (!client.ok()) {
    std::cerr << client.status() << "\n";
    return 1;
  }
  std::vector<ServerResult> results;
  if (command == "checksum") {
    results = (*client)->Checksums();
  } else if (command == "load") {
    results = (*client)->Loads();
  } else if (command == "perturb") {
    results = (*client)->Perturb(FLAGS_seed, FLAGS_scale, FLAGS_num_leaves);
  } else if (command == "reload") {
    if (FLAGS_model_path.empty()) {
      std::cerr << "reload needs --model_path\n";
      return 1;
    }
    results =
        (*client)->Reload(FLAGS_model_path, FLAGS_load_format, FLAGS_wait);
  } else {
    std::cerr << "unknown command \"" << command << "\"\n" << kUsage << "\n";
    return 1;
  }
  bool all_ok = true;
  for (const ServerResult& r : results) {
    nlohmann::json line = {
        {"url", r.url}, {"ok", r.status.ok()}, {"reply", r.reply}};
    if (!r.status.ok()) line["error"] = r.status.ToString();
    std::cout << JsonText(line) << std::endl;
    all_ok = all_ok && r.status.ok();
  }
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  gflags::SetUsageMessage(rlrt::kUsage);
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  google::InitGoogleLogging(argv[0]);
  if (argc != 2) {
    std::cerr << "give exactly one command\n" << rlrt::kUsage << "\n";
    return 1;
  }
  return rlrt::Run(argv[1]);
}
