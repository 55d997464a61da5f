// The external reward client: the reference Python server's scores in
// order, and every way a service can fail (wrong count, not JSON, not
// numbers, HTTP errors, slowness, endless replies, nobody listening) ends
// in a clear error, with retries only where a retry can help.
#include "trainer_bridge/remote/reward_service.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/reward_server_process.h"

namespace rlrt {
namespace {

using testing::StartRewardServer;

TEST(RewardServiceTest, ThePythonReferenceServerScoresInOrder) {
  auto [pid, port] = StartRewardServer();
  ASSERT_GT(pid, 0) << "python3 examples/reward_server.py did not start";
  RewardServiceOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port) + "/score";
  auto service = RewardService::Create(o);
  ASSERT_TRUE(service.ok()) << service.status();
  const std::vector<std::string> completions = {
      "3 + 4 = 7, so 72.", "no idea", "#### 71", "It is 1,072 or rather 72",
      "caf\xc3\xa9 72"};
  auto rewards = (*service)->Score("How many clips?", completions, "72");
  kill(pid, SIGTERM);
  ASSERT_TRUE(rewards.ok()) << rewards.status();
  EXPECT_EQ(*rewards, (std::vector<double>{1, 0, 0, 1, 1}));
  EXPECT_EQ((*service)->attempts(), 1);
}

// A misbehaving service on a thread, one endpoint per failure.
class HostileService : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Post("/count", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(R"({"rewards": [1]})", "application/json");
    });
    server_.Post("/text", [](const httplib::Request&, httplib::Response& r) {
      r.set_content("<html>oops</html>", "text/html");
    });
    server_.Post("/strings", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(R"({"rewards": ["1", 0]})", "application/json");
    });
    server_.Post("/nokey", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(R"({"scores": [1, 0]})", "application/json");
    });
    server_.Post("/deep", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(std::string(5000, '[') + std::string(5000, ']'),
                    "application/json");
    });
    server_.Post(
        "/flaky", [this](const httplib::Request&, httplib::Response& r) {
          if (flaky_calls_++ < 2) {
            r.status = 503;
            return;
          }
          r.set_content(R"({"rewards": [0.5, -1]})", "application/json");
        });
    server_.Post("/refuse", [](const httplib::Request&, httplib::Response& r) {
      r.status = 422;
      r.set_content("completions too long", "text/plain");
    });
    server_.Post("/slow", [](const httplib::Request&, httplib::Response& r) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      r.set_content(R"({"rewards": [1, 1]})", "application/json");
    });
    server_.Post("/huge", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(std::string(3 << 20, ' '), "application/json");
    });
    server_.Post("/echo", [](const httplib::Request& q, httplib::Response& r) {
      const auto j = nlohmann::json::parse(q.body);
      nlohmann::json out = {{"rewards", nlohmann::json::array()}};
      for (const auto& c : j["completions"])
        out["rewards"].push_back(c.get<std::string>().size());
      out["seen_prompt"] = j["prompt"];
      out["seen_answer"] = j["answer"];
      r.set_content(out.dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
  }
  StatusOr<std::vector<double>> Score(const std::string& path, int retries = 2,
                                      double timeout_seconds = 5,
                                      int64_t* attempts = nullptr) {
    RewardServiceOptions o;
    o.url = "http://127.0.0.1:" + std::to_string(port_) + path;
    o.retries = retries;
    o.timeout_seconds = timeout_seconds;
    o.retry_pause_seconds = 0.01;
    auto service = RewardService::Create(o);
    EXPECT_TRUE(service.ok()) << service.status();
    const std::vector<std::string> two = {"a", "bbb"};
    auto r = (*service)->Score("p", two, "7");
    if (attempts != nullptr) *attempts = (*service)->attempts();
    return r;
  }
  static std::string Message(const StatusOr<std::vector<double>>& r) {
    return std::string(r.status().message());
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> flaky_calls_{0};
};

TEST_F(HostileService, MalformedRepliesAreRefusedWithoutRetrying) {
  const struct {
    const char* path;
    const char* error;
  } cases[] = {
      {"/count", "1 rewards for 2 completions"},
      {"/text", "not a JSON object"},
      {"/strings", "reward 0 is not a finite number"},
      {"/nokey", "no \"rewards\" array"},
      {"/deep", "nest"},
      {"/refuse", "HTTP 422: completions too long"},
      {"/huge", "longer than 1048576 bytes"},
  };
  for (const auto& c : cases) {
    int64_t attempts = 0;
    auto r = Score(c.path, 2, 5, &attempts);
    ASSERT_FALSE(r.ok()) << c.path;
    EXPECT_NE(Message(r).find(c.error), std::string::npos)
        << c.path << ": " << r.status();
    EXPECT_NE(Message(r).find(c.path), std::string::npos) << r.status();
    EXPECT_EQ(attempts, 1) << c.path;
  }
}

TEST_F(HostileService, ServerErrorsAreRetriedThenSucceed) {
  int64_t attempts = 0;
  auto r = Score("/flaky", 2, 5, &attempts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (std::vector<double>{0.5, -1}));
  EXPECT_EQ(attempts, 3);
}

TEST_F(HostileService, RetriesRunOutOnASlowOrDeadService) {
  int64_t attempts = 0;
  auto slow = Score("/slow", 1, 0.3, &attempts);
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(Message(slow).find("after 2 attempts"), std::string::npos)
      << slow.status();
  EXPECT_EQ(attempts, 2);

  RewardServiceOptions o;
  o.url = "http://127.0.0.1:1/score";  // Nobody listens on port 1.
  o.retries = 0;
  auto dead = (*RewardService::Create(o))->Score("p", {}, "");
  ASSERT_FALSE(dead.ok());
  EXPECT_NE(Message(dead).find("http://127.0.0.1:1/score"), std::string::npos);
}

TEST_F(HostileService, SendsThePromptCompletionsAndAnswer) {
  RewardServiceOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port_) + "/echo";
  auto service = RewardService::Create(o);
  ASSERT_TRUE(service.ok());
  // Invalid UTF-8 in a sampled completion is sent replaced, not refused.
  const std::vector<std::string> completions = {"ab", "\xff\xfe", ""};
  auto r = (*service)->Score("the prompt", completions, "42");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (std::vector<double>{2, 6, 0}));  // U+FFFD is 3 bytes.
}

TEST(RewardServiceOptionsTest, BadUrlsAndOptionsAreRefused) {
  for (const char* url : {"", "https://x/score", "ftp://x", "http://"}) {
    RewardServiceOptions o;
    o.url = url;
    EXPECT_FALSE(RewardService::Create(o).ok()) << url;
  }
  RewardServiceOptions o;
  o.url = "http://localhost:9/";
  o.timeout_seconds = 0;
  EXPECT_FALSE(RewardService::Create(o).ok());
  o.timeout_seconds = 1;
  o.retries = -1;
  EXPECT_FALSE(RewardService::Create(o).ok());
}

}  // namespace
}  // namespace rlrt
