#include "sampler/server/connection_gate.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace rlrt {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// An HTTP library server on a private Unix socket, as the rollout server
// runs it, and a gate in front of it.
class GateTest : public ::testing::Test {
 protected:
  void StartWith(GateOptions options) {
    char dir[] = "/tmp/gate-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    options.upstream_unix_path = dir_ + "/s";
    upstream_.set_keep_alive_max_count(1);
    upstream_.set_address_family(AF_UNIX);
    ASSERT_TRUE(upstream_.bind_to_port(options.upstream_unix_path, 80));
    listener_ = std::thread([this] { upstream_.listen_after_bind(); });
    while (!upstream_.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    auto gate = ConnectionGate::Start(options);
    ASSERT_TRUE(gate.ok()) << gate.status();
    gate_ = std::move(*gate);
  }
  void TearDown() override {
    release_.set_value();
    if (gate_) gate_->StopAccepting();
    upstream_.stop();
    if (listener_.joinable()) listener_.join();
    if (gate_) gate_->Stop();
    ::unlink((dir_ + "/s").c_str());
    ::rmdir(dir_.c_str());
  }

  // A raw TCP connection to the gate.
  int Connect() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(gate_->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
              0);
    return fd;
  }
  // Everything the server sends until it closes.
  static std::string ReadAll(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, n);
    return out;
  }

  httplib::Server upstream_;
  std::thread listener_;
  std::string dir_;
  std::unique_ptr<ConnectionGate> gate_;
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
};

TEST(UsesReservedSlotTest, HealthLoadMetricsModelsAndAdmin) {
  for (const char* path : {"/health", "/get_load", "/metrics", "/v1/models",
                           "/admin/update_params", "/admin/x"})
    EXPECT_TRUE(UsesReservedSlot(path)) << path;
  for (const char* path :
       {"/generate", "/v1/completions", "/healthz", "/", "/administer", ""})
    EXPECT_FALSE(UsesReservedSlot(path)) << path;
}

TEST_F(GateTest, RelaysABodyIntactAndTagsTheConnection) {
  upstream_.Post(
      "/echo", [](const httplib::Request& req, httplib::Response& res) {
        uint64_t sum = 0;
        for (unsigned char c : req.body) sum = sum * 31 + c;
        res.set_content(
            std::to_string(req.body.size()) + " " + std::to_string(sum) + " " +
                req.get_header_value(ConnectionGate::kConnectionHeader),
            "text/plain");
      });
  StartWith({});
  std::string body(5 << 20, '\0');
  uint64_t sum = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    body[i] = static_cast<char>((i * 7919) >> 3);
    sum = sum * 31 + static_cast<unsigned char>(body[i]);
  }
  httplib::Client client("127.0.0.1", gate_->port());
  // A client's own header of that name must not replace the gate's.
  auto res = client.Post("/echo", {{ConnectionGate::kConnectionHeader, "999"}},
                         body, "application/octet-stream");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body,
            std::to_string(body.size()) + " " + std::to_string(sum) + " 1");
  EXPECT_EQ(gate_->stats().admitted, 1u);
}

TEST_F(GateTest, AnOversizeHeadIs431AndNeverReachesTheLibrary) {
  std::atomic<int> served{0};
  upstream_.Get("/health", [&](const httplib::Request&, httplib::Response& r) {
    ++served;
    r.set_content("ok", "text/plain");
  });
  GateOptions options;
  options.max_head_bytes = 4096;
  StartWith(options);
  const int fd = Connect();
  std::string head = "GET /health HTTP/1.1\r\nX-Big: " +
                     std::string(1 << 20, 'a');  // No end of line at all.
  ::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
  const std::string reply = ReadAll(fd);
  ::close(fd);
  EXPECT_EQ(reply.rfind("HTTP/1.1 431", 0), 0u) << reply.substr(0, 80);
  EXPECT_NE(reply.find("4096 bytes"), std::string::npos);
  EXPECT_EQ(served, 0);
  EXPECT_EQ(gate_->stats().heads_too_large, 1u);
}

TEST_F(GateTest, ASlowHeadIs408AfterTheTimeout) {
  GateOptions options;
  options.head_timeout = std::chrono::milliseconds(300);
  StartWith(options);
  const int fd = Connect();
  const std::string part = "GET /health HTTP/1.1\r\nHost: x\r\n";
  ::send(fd, part.data(), part.size(), MSG_NOSIGNAL);
  const Clock::time_point start = Clock::now();
  const std::string reply = ReadAll(fd);
  const double waited = SecondsSince(start);
  ::close(fd);
  EXPECT_EQ(reply.rfind("HTTP/1.1 408", 0), 0u) << reply.substr(0, 80);
  EXPECT_GT(waited, 0.2);
  EXPECT_LT(waited, 2.0);
  EXPECT_EQ(gate_->stats().head_timeouts, 1u);
}

TEST_F(GateTest, HealthIsServedWhileEveryGeneralSlotIsHeld) {
  std::atomic<int> slow_started{0};
  upstream_.Get("/slow", [&](const httplib::Request&, httplib::Response& r) {
    ++slow_started;
    released_.wait();
    r.set_content("slow", "text/plain");
  });
  upstream_.Get("/health", [](const httplib::Request&, httplib::Response& r) {
    r.set_content("ok", "text/plain");
  });
  GateOptions options;
  options.general_slots = 2;
  options.reserved_slots = 1;
  StartWith(options);
  std::vector<std::future<int>> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(std::async(std::launch::async, [this] {
      httplib::Client c("127.0.0.1", gate_->port());
      auto res = c.Get("/slow");
      return res ? res->status : -1;
    }));
  }
  const Clock::time_point start = Clock::now();
  while (slow_started < 2 && SecondsSince(start) < 10)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(slow_started, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(gate_->stats().general_in_use, 2);
  EXPECT_EQ(slow_started, 2);  // The third waits for a slot.

  httplib::Client client("127.0.0.1", gate_->port());
  const Clock::time_point asked = Clock::now();
  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->body, "ok");
  EXPECT_LT(SecondsSince(asked), 1.0);

  release_.set_value();
  for (auto& f : slow) EXPECT_EQ(f.get(), 200);
  release_ = std::promise<void>();  // TearDown sets it again.
}

TEST_F(GateTest, AHandlerSeesItsClientLeave) {
  std::promise<bool> saw_leave;
  upstream_.Get("/wait", [&](const httplib::Request& req,
                             httplib::Response& r) {
    const uint64_t id =
        std::stoull(req.get_header_value(ConnectionGate::kConnectionHeader));
    bool left = false;
    const Clock::time_point start = Clock::now();
    while (!left && SecondsSince(start) < 10) {
      left = !gate_->ClientConnected(id);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    saw_leave.set_value(left);
    r.set_content("late", "text/plain");
  });
  StartWith({});
  const int fd = Connect();
  const std::string request = "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ::close(fd);
  auto left = saw_leave.get_future();
  ASSERT_EQ(left.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(left.get());
}

TEST_F(GateTest, ConnectionsBeyondTheCapAreRefusedAtOnce) {
  GateOptions options;
  options.max_pending = 2;
  options.head_timeout = std::chrono::seconds(30);
  StartWith(options);
  const int a = Connect();
  const int b = Connect();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const int c = Connect();
  const std::string reply = ReadAll(c);
  EXPECT_EQ(reply.rfind("HTTP/1.1 503", 0), 0u) << reply.substr(0, 80);
  EXPECT_EQ(gate_->stats().refused_busy, 1u);
  for (int fd : {a, b, c}) ::close(fd);
}

}  // namespace
}  // namespace rlrt
