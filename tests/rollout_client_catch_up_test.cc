// Servers that fall behind the trainer's weights: one down during a push,
// one restarted with its initial weights without the client noticing. Both
// take no generation until the client's catch-up thread has given them the
// required version; no request fails and none is answered with old weights.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "tests/rollout_client_test_util.h"
#include "trainer_bridge/remote/remote_rollouts.h"

namespace rlrt {
namespace {

// Waits (a while) until server i is no longer behind.
bool CaughtUp(RolloutClient& client, size_t i) {
  for (int k = 0; k < 1000 && client.IsBehind(i); ++k)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return !client.IsBehind(i);
}

// Every request comes back with weights of at least `version`.
void ExpectAllAtLeast(RolloutClient& client, uint64_t version, int count,
                      uint64_t seed) {
  std::vector<RequestHandle> handles;
  for (int i = 0; i < count; ++i) {
    auto h = client.Submit(Sampled(seed + i));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(*h);
  }
  for (const RequestHandle& h : handles) {
    auto r = h.Wait();
    ASSERT_TRUE(r.ok()) << r.status();
    for (uint64_t v : r->samples[0].weight_versions) EXPECT_GE(v, version);
  }
}

// Pushes as one message, or (false) as a stream of 64 KiB chunks: about 16
// per push of stories260K's 1 MB, each leaf split across several.
class RolloutClientCatchUpTest : public ::testing::TestWithParam<bool> {};

TEST_P(RolloutClientCatchUpTest, ServersThatMissedPushesCatchUpBeforeServing) {
  const bool streamed = GetParam();
  Fleet f;
  RolloutClientOptions options;
  options.urls = f.urls;
  if (streamed) options.update_chunk_bytes = 64 << 10;
  options.policy = Policy::kRoundRobin;  // Both servers are asked in turn.
  options.worker_threads = 8;
  auto remote = RemoteRollouts::Create(options, nullptr);
  ASSERT_TRUE(remote.ok()) << remote.status();
  RolloutClient& client = (*remote)->client();
  LoadedModel trainer = testing::LoadStories();
  ASSERT_TRUE(Perturb(trainer.weights, 3, 0.02, 1 << 20, nullptr).ok());
  const std::string v1 = HashText(ContentHash(trainer.weights));

  // Server 1 is down: the push reaches server 0 and succeeds; server 1 is
  // behind, and generation goes on at version 1 on server 0.
  f.servers[1]->Stop();
  auto pushed = (*remote)->PushWeights(trainer.weights, 1);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_TRUE(client.IsBehind(1));
  EXPECT_FALSE(client.IsBehind(0));
  EXPECT_EQ(*(*remote)->WeightVersion(), 1u);
  ExpectAllAtLeast(client, 1, 6, 10);

  // It comes back restarted (version 0): the catch-up thread pushes
  // version 1 to it, and it serves again.
  f.Restart(1);
  ASSERT_TRUE(CaughtUp(client, 1));
  EXPECT_EQ(f.engines[1]->Stats().weight_version, 1u);
  EXPECT_EQ(f.EngineHash(1), v1);
  EXPECT_EQ(client.catch_ups(), 1);
  const int64_t before = f.Finished(1);
  const int64_t total = f.Finished(0) + before;
  ExpectAllAtLeast(client, 1, 10, 20);
  f.WaitUntilFinished(total + 10);
  EXPECT_GT(f.Finished(1), before);

  // Server 0 restarts between two requests, unnoticed: its first answer
  // carries version 0, is discarded and retried on server 1; then it is
  // caught up too.
  f.Restart(0);
  ExpectAllAtLeast(client, 1, 6, 30);
  EXPECT_GE(client.stale_replies(), 1);
  ASSERT_TRUE(CaughtUp(client, 0));
  EXPECT_EQ(f.EngineHash(0), v1);
  EXPECT_EQ(client.catch_ups(), 2);

  // The next push reaches both; the versions agree again.
  ASSERT_TRUE(Perturb(trainer.weights, 4, 0.02, 1 << 20, nullptr).ok());
  pushed = (*remote)->PushWeights(trainer.weights, 2);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(*(*remote)->WeightVersion(), 2u);
  EXPECT_EQ(*(*remote)->NewestWeightVersion(), 2u);
  EXPECT_EQ(f.EngineHash(0), f.EngineHash(1));

  // The servers' own account of the streams they took (the catch-ups
  // included).
  for (int i = 0; i < kServers; ++i) {
    httplib::Client http(f.urls[i]);
    auto res = http.Get("/admin/update_stream/status");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const nlohmann::json st = nlohmann::json::parse(res->body);
    EXPECT_EQ(st["active"], false);
    EXPECT_EQ(st["version"], 2);
    EXPECT_EQ(st["streams_committed"].get<int64_t>() > 0, streamed);
    EXPECT_EQ(st["streams_failed"], 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Pushes, RolloutClientCatchUpTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "Streamed" : "OneMessage";
                         });

TEST(RolloutClientPushTest, APushNoServerTakesIsAnError) {
  Fleet f;
  RolloutClientOptions options;
  options.urls = f.urls;
  options.worker_threads = 2;
  auto remote = RemoteRollouts::Create(options, nullptr);
  ASSERT_TRUE(remote.ok()) << remote.status();
  f.servers[0]->Stop();
  f.servers[1]->Stop();
  LoadedModel trainer = testing::LoadStories();
  auto pushed = (*remote)->PushWeights(trainer.weights, 1);
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(pushed.status().message().find("no rollout server could be "
                                           "reached"),
            std::string::npos)
      << pushed.status();
  EXPECT_EQ((*remote)->WeightVersion().status().code(),
            StatusCode::kUnavailable);
}

}  // namespace
}  // namespace rlrt
