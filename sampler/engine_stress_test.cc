// Several threads submit, abort, update weights and read checksums at once.
// Run it under ThreadSanitizer too (see README: cmake -DRLRT_TSAN=ON).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "models/forward/model_source.h"
#include "models/leaf_init.h"
#include "sampler/engine.h"
#include "sampler/engine_test_util.h"
#include "sampler/update_test_util.h"

namespace rlrt {
namespace {

using Clock = std::chrono::steady_clock;

struct Submission {
  RequestHandle handle;
  uint64_t min_version;  // Acknowledged before the request was submitted.
  bool aborted;
  int32_t n;
  int64_t max_new;
};

TEST(EngineStressTest, ConcurrentSubmitAbortUpdateAndChecksum) {
  auto mesh = testing::MakeMesh(2);
  EngineOptions options = testing::StoriesOptions();
  options.max_running_requests = 16;
  options.max_total_tokens = 1024;  // Small enough that requests queue.
  auto engine = testing::MakeEngine(options, mesh.get());
  ASSERT_NE(engine, nullptr);

  constexpr int kVersions = 8;
  auto trainer = testing::LoadStories();
  std::vector<proto::UpdateParams> updates;
  for (int v = 1; v <= kVersions; ++v) {
    ASSERT_TRUE(Perturb(trainer.weights, v, 1e-3, 3).ok());
    updates.push_back(testing::HandBuiltUpdate(trainer.weights, v));
  }

  std::atomic<uint64_t> acknowledged{0};
  std::atomic<bool> submitting{true};
  std::mutex mu;
  std::vector<Submission> submissions;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 12; ++i) {
        GenerateRequest r;
        const int prompt = 1 + rng() % 40;
        for (int k = 0; k < prompt; ++k) r.input_ids.push_back(3 + rng() % 500);
        r.n = 1 + rng() % 3;
        r.stop.max_new_tokens = 5 + rng() % 36;
        r.sampling.temperature = (rng() % 3) * 0.5f;
        r.seed = rng();
        r.ignore_eos = true;
        r.return_logprobs = rng() % 2;
        const uint64_t min_version = acknowledged.load();
        auto h = engine->Submit(r);
        ASSERT_TRUE(h.ok()) << h.status();
        const bool abort = rng() % 4 == 0;
        if (abort) {
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
          engine->Abort(h->id());
        }
        std::lock_guard<std::mutex> lock(mu);
        submissions.push_back(
            {*h, min_version, abort, r.n, r.stop.max_new_tokens});
      }
    });
  }
  threads.emplace_back([&] {
    for (const proto::UpdateParams& u : updates) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      auto report = engine->UpdateParams(u);
      ASSERT_TRUE(report.ok()) << report.status();
      acknowledged.store(report->version);
    }
  });
  threads.emplace_back([&] {
    while (submitting.load()) {
      ASSERT_TRUE(engine->WeightsChecksum().ok());
      const EngineStats stats = engine->Stats();
      EXPECT_LE(stats.load.kv_pages_free, stats.load.kv_pages_total);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  for (size_t i = 0; i + 1 < threads.size(); ++i) threads[i].join();
  submitting.store(false);
  threads.back().join();

  ASSERT_EQ(submissions.size(), 48u);
  std::set<uint64_t> ids;
  for (const Submission& s : submissions) {
    EXPECT_TRUE(ids.insert(s.handle.id()).second);  // No duplicates.
    auto result = s.handle.Wait();
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->id, s.handle.id());
    ASSERT_EQ(result->samples.size(), static_cast<size_t>(s.n));
    for (const SampleOutput& out : result->samples) {
      if (!s.aborted) {
        EXPECT_EQ(out.finish_reason, FinishReason::kLength);
      }
      if (out.finish_reason != FinishReason::kAbort) {
        EXPECT_EQ(static_cast<int64_t>(out.token_ids.size()), s.max_new);
      }
      ASSERT_EQ(out.weight_versions.size(), out.token_ids.size());
      for (size_t k = 0; k < out.weight_versions.size(); ++k) {
        EXPECT_GE(out.weight_versions[k], s.min_version);
        EXPECT_LE(out.weight_versions[k], uint64_t{kVersions});
        if (k > 0) {
          EXPECT_GE(out.weight_versions[k], out.weight_versions[k - 1]);
        }
      }
    }
  }
  // Stats are published just after the last result is handed over.
  for (int i = 0; i < 1000 && engine->Stats().load.running_samples > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.weight_version, uint64_t{kVersions});
  EXPECT_EQ(stats.updates_applied, kVersions);
  EXPECT_EQ(stats.load.running_samples, 0);
  EXPECT_EQ(stats.load.kv_pages_free, stats.load.kv_pages_total);
  EXPECT_EQ(engine->WeightsChecksum()->content_hash,
            ComputeChecksums(trainer.weights).content_hash);
}

}  // namespace
}  // namespace rlrt
