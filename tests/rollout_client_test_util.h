// Shared by the RolloutClient suites: two stories260K rollout servers on
// free loopback ports, and the requests they are sent.
#ifndef RLRT_TESTS_ROLLOUT_CLIENT_TEST_UTIL_H_
#define RLRT_TESTS_ROLLOUT_CLIENT_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sampler/engine_test_util.h"
#include "sampler/server/rollout_server.h"
#include "trainer_bridge/remote/rollout_client.h"

namespace rlrt {

using Policy = RolloutClientOptions::Policy;

inline constexpr int kServers = 2;

// How the servers print a content hash.
inline std::string HashText(uint64_t hash) {
  std::ostringstream out;
  out << "0x" << std::hex << std::setw(16) << std::setfill('0') << hash;
  return out.str();
}

// Two servers on free loopback ports, each with its own engine and mesh.
struct Fleet {
  Fleet() {
    for (int i = 0; i < kServers; ++i) {
      meshes[i] = testing::MakeMesh(1, "rollout" + std::to_string(i));
      engines[i] =
          testing::MakeEngine(testing::StoriesOptions(), meshes[i].get());
      RolloutServerOptions options;
      options.port = 0;
      auto server = RolloutServer::Create(engines[i].get(), nullptr, options);
      EXPECT_TRUE(server.ok()) << server.status();
      servers[i] = std::move(server).value();
      EXPECT_TRUE(servers[i]->Start().ok());
      urls.push_back("http://127.0.0.1:" + std::to_string(servers[i]->port()));
    }
  }

  std::unique_ptr<RolloutClient> Client(Policy policy = Policy::kLeastLoaded,
                                        int max_attempts = 3) {
    RolloutClientOptions options;
    options.urls = urls;
    options.policy = policy;
    options.max_attempts = max_attempts;
    options.worker_threads = 16;
    auto client = RolloutClient::Create(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  int64_t Finished(int i) const {
    return engines[i]->Stats().scheduler.finished_requests;
  }
  // The engines count a request just after its reply can have gone out:
  // waits (a while) until they have counted `total` in all.
  void WaitUntilFinished(int64_t total) const {
    for (int i = 0; i < 500 && Finished(0) + Finished(1) < total; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Server i as after a crash and restart: a fresh engine with its initial
  // weights (version 0), listening on the same port again.
  void Restart(int i) {
    const int port = servers[i]->port();
    servers[i].reset();
    engines[i] =
        testing::MakeEngine(testing::StoriesOptions(), meshes[i].get());
    RolloutServerOptions options;
    options.port = port;
    auto server = RolloutServer::Create(engines[i].get(), nullptr, options);
    EXPECT_TRUE(server.ok()) << server.status();
    servers[i] = std::move(server).value();
    EXPECT_TRUE(servers[i]->Start().ok());
  }
  std::string EngineHash(int i) const {
    return HashText(engines[i]->WeightsChecksum()->content_hash);
  }

  std::array<std::unique_ptr<Mesh>, kServers> meshes;
  std::array<std::unique_ptr<SamplerEngine>, kServers> engines;
  std::array<std::unique_ptr<RolloutServer>, kServers> servers;
  std::vector<std::string> urls;
};

inline GenerateRequest Sampled(uint64_t seed, int32_t n = 1) {
  GenerateRequest r;
  r.input_ids = {1, 403, 407};
  r.sampling.temperature = 1.0f;
  r.sampling.top_p = 0.95f;
  r.stop.max_new_tokens = 12;
  r.ignore_eos = true;
  r.n = n;
  r.seed = seed;
  r.return_logprobs = true;
  return r;
}

}  // namespace rlrt

#endif  // RLRT_TESTS_ROLLOUT_CLIENT_TEST_UTIL_H_
