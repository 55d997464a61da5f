// A real build/bin/rollout_server process (stories260K) for the hostile
// replay suite, and what every case must leave unchanged. The raw-socket
// clients are examples/hostile_clients.h.
#ifndef RLRT_TESTS_HOSTILE_SERVER_UTIL_H_
#define RLRT_TESTS_HOSTILE_SERVER_UTIL_H_

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "examples/child_process.h"
#include "examples/hostile_clients.h"
#include "sampler/engine_test_util.h"

namespace rlrt {

using nlohmann::json;
using HostileClock = std::chrono::steady_clock;

inline double SecondsSince(HostileClock::time_point t) {
  return std::chrono::duration<double>(HostileClock::now() - t).count();
}

class RealServer {
 public:
  // Starts the binary on a free port and waits for its ready line.
  static std::unique_ptr<RealServer> Start(
      const std::vector<std::string>& flags, const std::string& token) {
    auto server = std::unique_ptr<RealServer>(new RealServer);
    server->token_ = token;
    StatusOr<int> port = FreeLoopbackPort();
    EXPECT_TRUE(port.ok());
    server->port_ = *port;
    server->log_ = ::testing::TempDir() + "hostile_server_" +
                   std::to_string(getpid()) + "_" + std::to_string(*port);
    // RLRT_HOSTILE_SERVER_BINARY replays the suite against another build
    // (an older one, for a before/after table); flags it lacks are ignored.
    const char* other = std::getenv("RLRT_HOSTILE_SERVER_BINARY");
    std::vector<std::string> argv = {other ? other : ROLLOUT_SERVER_PATH,
                                     "--model_dir=" + testing::kStoriesDir,
                                     "--port=" + std::to_string(*port),
                                     "--admin_token=" + token};
    argv.insert(argv.end(), flags.begin(), flags.end());
    if (other) argv.push_back("--undefok=head_timeout_ms,body_timeout_ms");
    StatusOr<ChildProcess> child =
        ChildProcess::Start(argv, server->log_ + ".out", server->log_ + ".err");
    EXPECT_TRUE(child.ok()) << child.status();
    server->child_ = std::make_unique<ChildProcess>(std::move(*child));
    const HostileClock::time_point start = HostileClock::now();
    while (SecondsSince(start) < 120) {
      std::ifstream out(server->log_ + ".out");
      std::string line;
      while (std::getline(out, line))
        if (line.find("server_ready") != std::string::npos) return server;
      if (server->child_->Poll()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "the server did not start; see " << server->log_;
    return server;
  }
  ~RealServer() {
    if (child_) {
      child_->Signal(SIGTERM);
      // A clean exit also means no sanitizer report in a sanitizer build.
      EXPECT_EQ(child_->Wait(60), 0) << "the server's log: " << log_ << ".err";
    }
  }

  int port() const { return port_; }
  bool alive() { return child_ && !child_->Poll(); }
  int64_t rss_kib() const {
    StatusOr<int64_t> kib = ResidentKib(child_->pid());
    return kib.ok() ? *kib : -1;
  }
  // VmHWM: the most the process has ever had resident.
  int64_t peak_rss_kib() const {
    std::ifstream status("/proc/" + std::to_string(child_->pid()) + "/status");
    std::string key;
    while (status >> key) {
      if (key == "VmHWM:") {
        int64_t kib = -1;
        status >> kib;
        return kib;
      }
    }
    return -1;
  }

  std::unique_ptr<httplib::Client> Client(double timeout_seconds = 60) const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client->set_read_timeout(static_cast<time_t>(timeout_seconds), 0);
    client->set_connection_timeout(5, 0);
    return client;
  }
  httplib::Headers Auth() const {
    if (token_.empty()) return {};
    return {{"Authorization", "Bearer " + token_}};
  }

  // Seconds /health takes to answer, or a large number when it fails.
  double HealthSeconds() const {
    const HostileClock::time_point start = HostileClock::now();
    auto res = Client(10)->Get("/health");
    if (!res || res->status != 200) return 1e9;
    return SecondsSince(start);
  }
  std::string ContentHash() const {
    auto res = Client()->Get("/admin/weights_checksum", Auth());
    if (!res || res->status != 200) return "unreachable";
    return json::parse(res->body)["content_hash"].get<std::string>();
  }
  std::vector<int32_t> Greedy() const {
    const json request = {
        {"text", "Once upon a time"},
        {"sampling_params",
         {{"temperature", 0}, {"max_new_tokens", 24}, {"ignore_eos", true}}}};
    auto res = Client()->Post("/generate", request.dump(), "application/json");
    if (!res || res->status != 200) return {};
    return json::parse(res->body)["output_ids"].get<std::vector<int32_t>>();
  }

 private:
  RealServer() = default;
  int port_ = 0;
  std::string token_;
  std::string log_;
  std::unique_ptr<ChildProcess> child_;
};

// What every case must leave as it found it.
struct Unharmed {
#if RLRT_SANITIZED_SERVER
  // ASan's quarantine alone holds 256 MiB of freed memory; TSan slows
  // everything about tenfold.
  static constexpr int64_t kRssGrowthBoundKib = 512 << 10;
  static constexpr double kHealthBoundSeconds = 3;
  static constexpr double kSlowdown = 10;
#else
  static constexpr int64_t kRssGrowthBoundKib = 64 << 10;  // 64 MiB.
  static constexpr double kHealthBoundSeconds = 0.5;
  static constexpr double kSlowdown = 1;
#endif

  void Record(RealServer& server) {
    hash = server.ContentHash();
    greedy = server.Greedy();
    rss_kib = server.peak_rss_kib();
    ASSERT_FALSE(greedy.empty());
  }
  void Check(RealServer& server, const std::string& what) const {
    ASSERT_TRUE(server.alive()) << what << ": the server died";
    const double health = server.HealthSeconds();
    // One JSON line per case: the figures of the README's table.
    std::cout << json{{"case", what},
                      {"peak_rss_growth_mib",
                       (server.peak_rss_kib() - rss_kib) / 1024.0},
                      {"health_seconds", health}}
                     .dump()
              << std::endl;
    EXPECT_LT(health, kHealthBoundSeconds) << what;
    EXPECT_EQ(server.ContentHash(), hash) << what;
    EXPECT_EQ(server.Greedy(), greedy) << what;
    // The peak, not just the end: memory taken and given back counts.
    EXPECT_LT(server.peak_rss_kib() - rss_kib, kRssGrowthBoundKib) << what;
  }

  std::string hash;
  std::vector<int32_t> greedy;
  int64_t rss_kib = 0;
};

}  // namespace rlrt

#endif  // RLRT_TESTS_HOSTILE_SERVER_UTIL_H_
