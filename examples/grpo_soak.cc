// grpo_soak: the GRPO loop against remote rollout servers for a long run,
// with the faults a real deployment sees, to show nothing is lost and
// memory does not grow.
//
// Starts --num_servers rollout_server processes on loopback and one
// grpo_gsm8k_10steps trainer (--rollout_servers, a checkpoint every step,
// --max_seconds = the run). While it trains:
//   - every --reload_every_seconds each server reloads the trainer's latest
//     checkpoint from disk under that checkpoint's policy version (a newer
//     push may already have superseded it: then the server refuses it as
//     stale and keeps its weights, which is counted, not an error);
//   - at --kill_at_seconds server --kill_server is SIGKILLed and, after
//     --restart_after_seconds, started again on the same port with its
//     initial weights; the trainer's client must route around it, retry
//     what it lost, and bring it back to the current weights;
//   - resident memory of every process is sampled every
//     --rss_every_seconds.
// The soak passes when the trainer finishes its time budget cleanly, no
// server dies unasked, and resident memory after --warmup_seconds grows by
// at most --max_rss_growth_fraction. JSON lines; the last is soak_summary.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "base/timing.h"
#include "examples/child_process.h"
#include "examples/cli_support.h"
#include "trainer_bridge/remote/rollout_client.h"

DEFINE_double(minutes, 20, "Length of the GRPO run.");
DEFINE_int32(num_servers, 2, "Rollout server processes.");
DEFINE_double(reload_every_seconds, 30,
              "Reload every server from the latest checkpoint this often; "
              "0: never.");
DEFINE_int32(kill_server, 1, "Which server to SIGKILL; -1: none.");
DEFINE_double(kill_at_seconds, -1,
              "When to kill it; negative: at 40% of the run.");
DEFINE_double(restart_after_seconds, 5,
              "How long it stays down before it is started again.");
DEFINE_double(rss_every_seconds, 30, "Resident memory sampling period.");
DEFINE_double(warmup_seconds, 60,
              "Memory growth is measured from the first sample after this "
              "(allocations of the first steps are not growth).");
DEFINE_double(max_rss_growth_fraction, 0.1,
              "Largest accepted growth of any process's resident memory from "
              "warm-up to the end (medians of the first and last five "
              "samples, plus 8 MiB of allocator slack).");
DEFINE_string(work_dir, "",
              "Checkpoints and logs; empty: a new directory under /tmp.");
DEFINE_string(admin_token, "soak-admin-token", "The servers' admin token.");
DEFINE_string(trainer_args, "",
              "Extra flags for grpo_gsm8k_10steps, space separated.");
DEFINE_string(server_args, "",
              "Extra flags for rollout_server, space separated.");

namespace rlrt {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

void Emit(const json& line) { std::cout << JsonLine(line) << std::endl; }

std::vector<std::string> SplitArgs(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string a; in >> a;) out.push_back(a);
  return out;
}

// Binaries beside this one.
std::string Sibling(const std::string& name) {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  return (self.parent_path() / name).string();
}

// Resident memory samples of one process since its warm-up ended. Single
// samples are noisy (a reload or a checkpoint briefly holds a second copy
// of the weights), so growth compares the median of the first five with the
// median of the last five.
struct RssTrack {
  std::vector<int64_t> kib;
  static int64_t Median(std::vector<int64_t> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  }
  std::optional<int64_t> Warm() const {
    if (kib.empty()) return std::nullopt;
    return Median({kib.begin(), kib.begin() + std::min<size_t>(5, kib.size())});
  }
  std::optional<int64_t> End() const {
    if (kib.empty()) return std::nullopt;
    return Median({kib.end() - std::min<size_t>(5, kib.size()), kib.end()});
  }
  json ToJson() const {
    auto opt = [](std::optional<int64_t> v) { return v ? json(*v) : json(); };
    return {{"warm_kib", opt(Warm())},
            {"end_kib", opt(End())},
            {"peak_kib", kib.empty()
                             ? json()
                             : json(*std::max_element(kib.begin(), kib.end()))},
            {"samples", kib.size()}};
  }
};

struct Server {
  int port = 0;
  std::optional<ChildProcess> process;
  SteadyClock::time_point started;
  RssTrack rss;  // Since its last start's warm-up.
  int restarts = 0;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

struct Totals {
  int64_t reloads_done = 0;
  int64_t reloads_stale = 0;   // Superseded by a newer push: refused.
  int64_t reloads_failed = 0;  // Any other reason (named in the line).
  int64_t reloads_unreachable = 0;
  int64_t kills = 0;
  int64_t unexpected_exits = 0;
};

StatusOr<ChildProcess> StartServer(const Server& s, size_t index,
                                   const fs::path& work) {
  std::vector<std::string> argv = {
      Sibling("rollout_server"), "--port=" + std::to_string(s.port),
      "--num_virtual_devices=1", "--admin_token=" + FLAGS_admin_token};
  for (std::string& a : SplitArgs(FLAGS_server_args))
    argv.push_back(std::move(a));
  const std::string name = "server" + std::to_string(index);
  return ChildProcess::Start(argv, (work / (name + ".jsonl")).string(),
                             (work / (name + ".log")).string());
}

bool Healthy(const Server& s) {
  httplib::Client http("127.0.0.1", s.port);
  http.set_connection_timeout(1, 0);
  const httplib::Result res = http.Get("/health");
  return res && res->status == 200;
}

Status WaitHealthy(Server& s, double seconds) {
  const SteadyClock::time_point deadline =
      SteadyClock::now() + std::chrono::milliseconds(int64_t(seconds * 1000));
  while (SteadyClock::now() < deadline) {
    if (s.process->Poll())
      return UnavailableError("rollout_server on port " +
                              std::to_string(s.port) + " exited at start");
    if (Healthy(s)) return OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return UnavailableError("rollout_server on port " + std::to_string(s.port) +
                          " did not become healthy");
}

// The latest checkpoint's directory and policy version, if one is complete.
std::optional<std::pair<fs::path, uint64_t>> LatestCheckpoint(
    const fs::path& dir) {
  std::ifstream latest(dir / "latest");
  std::string name;
  if (!latest || !std::getline(latest, name) || name.empty())
    return std::nullopt;
  std::ifstream state(dir / name / "state.json");
  const json s = json::parse(state, nullptr, /*allow_exceptions=*/false);
  if (!s.is_object() || !s.contains("policy_version") ||
      !s["policy_version"].is_number_unsigned())
    return std::nullopt;
  return std::make_pair(dir / name, s["policy_version"].get<uint64_t>());
}

// `admin` holds every server's URL, in server order.
void ReloadAll(RolloutClient& admin, std::vector<Server>& servers,
               const fs::path& checkpoints, double t, Totals& totals) {
  const auto latest = LatestCheckpoint(checkpoints);
  if (!latest) return;
  const std::vector<ServerResult> results = admin.Reload(
      latest->first.string(), "safetensors", /*wait=*/true, latest->second);
  for (size_t i = 0; i < servers.size(); ++i) {
    Server& s = servers[i];
    if (!s.process || s.process->Poll()) continue;  // Down on purpose.
    const ServerResult& r = results[i];
    std::string outcome = "done";
    const std::string message(r.status.message());
    if (r.http_status == 0) {
      outcome = "unreachable";
      ++totals.reloads_unreachable;
    } else if (r.status.ok()) {
      ++totals.reloads_done;
    } else if (r.http_status == 409 ||
               message.find("not at least the version in force") !=
                   std::string::npos) {
      outcome = "stale";
      ++totals.reloads_stale;
    } else {
      outcome = "failed";
      ++totals.reloads_failed;
    }
    json line = {{"phase", "reload"},
                 {"t", t},
                 {"server", i},
                 {"checkpoint", latest->first.filename().string()},
                 {"weight_version", latest->second},
                 {"outcome", outcome}};
    if (!r.status.ok()) line["reason"] = message;
    Emit(line);
  }
}

// The trainer's last JSON line of `phase` in its stdout log.
json LastPhase(const fs::path& log, const std::string& phase) {
  std::ifstream in(log);
  json found;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("phase", "") == phase) found = j;
  }
  return found;
}

int64_t CountPhase(const fs::path& log, const std::string& phase) {
  std::ifstream in(log);
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("phase", "") == phase) ++n;
  }
  return n;
}

// The largest training-inference mismatch the trainer reported, over all
// steps and over the steps sampled with the current policy (version lag 0,
// where it is exactly 0 when the servers compute what the trainer does).
json MismatchSummary(const fs::path& log) {
  std::ifstream in(log);
  double all = 0, fresh = 0;
  int64_t fresh_steps = 0;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("phase", "") != "grpo_step") continue;
    const double m = j.value("logprob_mismatch_max", 0.0);
    all = std::max(all, m);
    if (j.value("version_lag", -1) == 0) {
      fresh = std::max(fresh, m);
      ++fresh_steps;
    }
  }
  return {{"max", all}, {"max_fresh", fresh}, {"fresh_steps", fresh_steps}};
}

StatusOr<bool> Run() {
  if (!(FLAGS_minutes > 0) || FLAGS_num_servers < 1 ||
      FLAGS_kill_server >= FLAGS_num_servers || FLAGS_rss_every_seconds <= 0 ||
      FLAGS_reload_every_seconds < 0 || FLAGS_restart_after_seconds < 0)
    return InvalidArgumentError(
        "need --minutes > 0, --num_servers >= 1, --kill_server < "
        "--num_servers, --rss_every_seconds > 0 and non-negative periods");
  fs::path work = FLAGS_work_dir;
  if (work.empty()) {
    std::string tmpl = "/tmp/grpo_soak.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      return UnavailableError("cannot create a work directory under /tmp");
    work = tmpl;
  }
  std::error_code error;
  fs::create_directories(work / "checkpoints", error);
  if (error) return UnavailableError(work.string() + ": " + error.message());
  const double run_seconds = FLAGS_minutes * 60;
  const double kill_at =
      FLAGS_kill_at_seconds >= 0 ? FLAGS_kill_at_seconds : 0.4 * run_seconds;

  std::vector<Server> servers(FLAGS_num_servers);
  std::string urls;
  for (size_t i = 0; i < servers.size(); ++i) {
    ASSIGN_OR_RETURN(servers[i].port, FreeLoopbackPort());
    ASSIGN_OR_RETURN(ChildProcess p, StartServer(servers[i], i, work));
    servers[i].process = std::move(p);
    servers[i].started = SteadyClock::now();
    urls += (urls.empty() ? "" : ",") + servers[i].url();
  }
  for (Server& s : servers) RETURN_IF_ERROR(WaitHealthy(s, 120));
  // Reloads and the final checksums go through one client over all servers.
  RolloutClientOptions admin_options;
  for (const Server& s : servers) admin_options.urls.push_back(s.url());
  admin_options.admin_token = FLAGS_admin_token;
  admin_options.worker_threads = 1;
  admin_options.check_health = false;
  admin_options.request_timeout_seconds = 120;
  ASSIGN_OR_RETURN(std::unique_ptr<RolloutClient> admin,
                   RolloutClient::Create(admin_options));
  Emit({{"phase", "soak_start"},
        {"work_dir", work.string()},
        {"urls", urls},
        {"minutes", FLAGS_minutes},
        {"kill_server", FLAGS_kill_server},
        {"kill_at_seconds", kill_at}});

  const fs::path trainer_log = work / "trainer.jsonl";
  std::vector<std::string> argv = {
      Sibling("grpo_gsm8k_10steps"),
      "--rollout_servers=" + urls,
      "--admin_token=" + FLAGS_admin_token,
      "--steps=100000000",
      "--max_seconds=" + std::to_string(run_seconds),
      "--checkpoint_every=1",
      "--checkpoint_keep=3",
      "--checkpoint_dir=" + (work / "checkpoints").string(),
      "--eval_every=0"};
  for (std::string& a : SplitArgs(FLAGS_trainer_args))
    argv.push_back(std::move(a));
  ASSIGN_OR_RETURN(ChildProcess trainer,
                   ChildProcess::Start(argv, trainer_log.string(),
                                       (work / "trainer.log").string()));
  const SteadyClock::time_point start = SteadyClock::now();
  auto elapsed = [&] { return SecondsSince(start); };

  Totals totals;
  RssTrack trainer_rss;
  double next_reload = FLAGS_reload_every_seconds;
  double next_rss = 0;
  bool killed = false;
  double restart_at = -1;  // When to restart servers that are down; < 0: none.
  std::optional<int> trainer_exit;
  while (!(trainer_exit = trainer.Poll())) {
    const double t = elapsed();
    for (size_t i = 0; i < servers.size(); ++i) {
      Server& s = servers[i];
      if (!s.process) continue;
      if (std::optional<int> code = s.process->Poll()) {
        ++totals.unexpected_exits;
        Emit({{"phase", "server_exited_unasked"},
              {"t", t},
              {"server", i},
              {"exit_status", *code}});
        s.process.reset();
        restart_at = t;  // Bring it back, as an operator would.
      }
    }
    if (!killed && FLAGS_kill_server >= 0 && t >= kill_at) {
      Server& s = servers[FLAGS_kill_server];
      s.process->Signal(SIGKILL);
      s.process->Wait();
      s.process.reset();
      killed = true;
      ++totals.kills;
      restart_at = t + FLAGS_restart_after_seconds;
      Emit({{"phase", "server_killed"},
            {"t", t},
            {"server", FLAGS_kill_server}});
    }
    if (restart_at >= 0 && t >= restart_at) {
      for (size_t i = 0; i < servers.size(); ++i) {
        Server& s = servers[i];
        if (s.process) continue;
        ASSIGN_OR_RETURN(ChildProcess p, StartServer(s, i, work));
        s.process = std::move(p);
        s.started = SteadyClock::now();
        s.rss.kib.clear();
        ++s.restarts;
        const Status healthy = WaitHealthy(s, 120);
        Emit({{"phase", "server_restarted"},
              {"t", elapsed()},
              {"server", i},
              {"healthy", healthy.ok()}});
      }
      restart_at = -1;
    }
    if (FLAGS_reload_every_seconds > 0 && t >= next_reload) {
      ReloadAll(*admin, servers, work / "checkpoints", t, totals);
      next_reload += FLAGS_reload_every_seconds;
    }
    if (t >= next_rss) {
      json line = {{"phase", "rss"}, {"t", t}};
      if (StatusOr<int64_t> kib = ResidentKib(trainer.pid()); kib.ok()) {
        if (t >= FLAGS_warmup_seconds) trainer_rss.kib.push_back(*kib);
        line["trainer_kib"] = *kib;
      }
      json server_kib = json::array();
      for (Server& s : servers) {
        std::optional<int64_t> kib;
        if (s.process) {
          if (StatusOr<int64_t> k = ResidentKib(s.process->pid()); k.ok())
            kib = *k;
        }
        if (kib) {
          const double up = SecondsSince(s.started);
          if (up >= FLAGS_warmup_seconds) s.rss.kib.push_back(*kib);
        }
        server_kib.push_back(kib ? json(*kib) : json(nullptr));
      }
      line["servers_kib"] = server_kib;
      Emit(line);
      next_rss += FLAGS_rss_every_seconds;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  // Every server that is up must hold the trainer's final weights: the
  // same content hash and the version the trainer ended at.
  const json summary = LastPhase(trainer_log, "summary");
  json finals = json::array();
  bool servers_agree = true;
  std::string first_hash;
  for (const ServerResult& r : admin->Checksums()) {
    finals.push_back({{"url", r.url},
                      {"ok", r.status.ok()},
                      {"weight_version", r.reply.value("weight_version", 0)},
                      {"content_hash", r.reply.value("content_hash", "")}});
    const std::string hash = r.reply.value("content_hash", "");
    if (first_hash.empty()) first_hash = hash;
    servers_agree =
        servers_agree && r.status.ok() && hash == first_hash &&
        summary.is_object() &&
        r.reply.value("weight_version", uint64_t{0}) ==
            summary.value("sampler_weight_version", uint64_t{1} << 63);
  }
  for (Server& s : servers) {
    if (s.process) {
      s.process->Signal(SIGTERM);
      s.process->Wait(30);
    }
  }

  const double slack = 8 * 1024;
  auto growth_ok = [&](const RssTrack& track) {
    const std::optional<int64_t> warm = track.Warm(), end = track.End();
    return !warm || *end <= *warm * (1 + FLAGS_max_rss_growth_fraction) + slack;
  };
  bool memory_ok = growth_ok(trainer_rss);
  json server_rss = json::array();
  for (const Server& s : servers) {
    memory_ok = memory_ok && growth_ok(s.rss);
    json entry = s.rss.ToJson();
    entry["restarts"] = s.restarts;
    server_rss.push_back(entry);
  }
  const bool trainer_ok = *trainer_exit == 0 && summary.is_object() &&
                          summary.value("stopped_early", false);
  const bool ok = trainer_ok && totals.unexpected_exits == 0 && memory_ok &&
                  totals.reloads_failed == 0 && servers_agree;
  Emit({{"phase", "soak_summary"},
        {"ok", ok},
        {"seconds", elapsed()},
        {"trainer_exit_status", *trainer_exit},
        {"grpo_steps", CountPhase(trainer_log, "grpo_step")},
        {"checkpoints_saved", CountPhase(trainer_log, "checkpoint_saved")},
        {"logprob_mismatch", MismatchSummary(trainer_log)},
        {"trainer_summary", summary},
        {"reloads_done", totals.reloads_done},
        {"reloads_refused_stale", totals.reloads_stale},
        {"reloads_failed", totals.reloads_failed},
        {"reloads_unreachable", totals.reloads_unreachable},
        {"servers_killed", totals.kills},
        {"servers_exited_unasked", totals.unexpected_exits},
        {"servers_final", finals},
        {"servers_agree", servers_agree},
        {"trainer_rss", trainer_rss.ToJson()},
        {"servers_rss", server_rss},
        {"memory_ok", memory_ok},
        {"work_dir", work.string()}});
  return ok;
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Soak: the GRPO loop against rollout servers that are reloaded, "
      "killed and restarted while it runs; reports errors and memory.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  rlrt::StatusOr<bool> ok = rlrt::Run();
  if (!ok.ok()) {
    std::cerr << "grpo_soak: " << ok.status() << std::endl;
    return 1;
  }
  return *ok ? 0 : 2;
}
