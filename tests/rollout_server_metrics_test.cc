// A live build/bin/rollout_server's /metrics, after plain and streamed
// generations, as Prometheus's own checker (`promtool check metrics`,
// from Debian's prometheus package) reads it.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <utility>

#include "sampler/server/metrics_test_util.h"
#include "tests/rollout_server_process.h"

namespace rlrt {
namespace {

using nlohmann::json;

// The output and exit code of a shell command (stderr included).
std::pair<std::string, int> RunShell(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {"popen failed", -1};
  char buf[4096];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) output += buf;
  const int status = pclose(pipe);
  return {output, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

// Stops the server however the test ends.
struct ServerProcess {
  explicit ServerProcess(const std::string& flags) {
    std::tie(pid, port) = testing::StartServer(flags);
  }
  ~ServerProcess() {
    if (pid > 0) kill(pid, SIGTERM);
  }
  int pid = 0;
  int port = 0;
};

TEST(RolloutServerMetricsTest, PromtoolAcceptsALiveServersMetrics) {
  if (RunShell("command -v promtool").second != 0)
    GTEST_SKIP() << "promtool not found: install Debian's prometheus package "
                    "(.ci/setup.sh does)";

  ServerProcess server("--seed=1");
  ASSERT_GT(server.pid, 0) << "the server did not start";
  httplib::Client client("127.0.0.1", server.port);
  client.set_read_timeout(60, 0);
  constexpr int kMaxTokens = 4;
  const json generate = {{"text", "Once upon a time"},
                         {"sampling_params",
                          {{"temperature", 0},
                           {"max_new_tokens", kMaxTokens},
                           {"ignore_eos", true}}}};
  for (int i = 0; i < 2; ++i) {
    auto res = client.Post("/generate", generate.dump(), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
  }
  auto streamed = client.Post("/v1/completions",
                              json{{"prompt", "Once upon a time"},
                                   {"max_tokens", kMaxTokens},
                                   {"temperature", 0},
                                   {"ignore_eos", true},
                                   {"stream", true}}
                                  .dump(),
                              "application/json");
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->status, 200) << streamed->body;
  ASSERT_NE(streamed->body.find("data: [DONE]"), std::string::npos)
      << streamed->body;
  constexpr int kGenerations = 3;
  // A request the server refuses, so an error counter is not zero either.
  auto bad = client.Post("/generate", "{", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);

  auto scraped = client.Get("/metrics");
  ASSERT_TRUE(scraped);
  ASSERT_EQ(scraped->status, 200);
  const std::filesystem::path file =
      std::filesystem::path(::testing::TempDir()) /
      ("rlrt_metrics_" + std::to_string(getpid()) + ".txt");
  std::ofstream(file) << scraped->body;
  const auto [complaints, exit_code] =
      RunShell("promtool check metrics < " + file.string());
  std::filesystem::remove(file);
  EXPECT_EQ(exit_code, 0) << complaints << "\n" << scraped->body;
  EXPECT_EQ(complaints, "") << scraped->body;

  const testing::MetricsText m = testing::ParseMetricsText(scraped->body);
  testing::ExpectPrometheusNaming(m);
  EXPECT_EQ(
      testing::ExpectConsistentHistogram(m, "rlrt_time_to_first_token_seconds"),
      kGenerations);
  EXPECT_EQ(testing::ExpectConsistentHistogram(m, "rlrt_e2e_latency_seconds"),
            kGenerations);
  EXPECT_GT(m.Value("rlrt_time_to_first_token_seconds_sum"), 0);
  EXPECT_LE(m.Value("rlrt_time_to_first_token_seconds_sum"),
            m.Value("rlrt_e2e_latency_seconds_sum"));
  EXPECT_EQ(m.Value("rlrt_generation_tokens_total"), kGenerations * kMaxTokens);
  EXPECT_EQ(m.Value("rlrt_requests_total", "endpoint=\"generate\""), 3);
  EXPECT_EQ(m.Value("rlrt_requests_total", "endpoint=\"completions\""), 1);
  EXPECT_EQ(m.Value("rlrt_request_errors_total", "endpoint=\"generate\""), 1);
}

}  // namespace
}  // namespace rlrt
