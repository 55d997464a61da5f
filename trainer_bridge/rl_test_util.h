// Test helpers for the RL loop: a task whose reward a tiny random model can
// learn, and an engine and a learner started from the same weights.
#ifndef RLRT_TRAINER_BRIDGE_RL_TEST_UTIL_H_
#define RLRT_TRAINER_BRIDGE_RL_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "models/forward/model_source.h"
#include "models/test_util.h"
#include "sampler/engine.h"
#include "trainer_bridge/grpo_learner.h"
#include "trainer_bridge/rl_loop.h"
#include "trainer_bridge/rl_task.h"

namespace rlrt::testing {

inline constexpr int32_t kTarget = 7;
inline constexpr char kUntied[] =
    RLRT_SOURCE_DIR "/tests/reference/fixtures/qwen3_untied";
inline constexpr char kTied[] =
    RLRT_SOURCE_DIR "/tests/reference/fixtures/qwen3_tied";

// Reward: the fraction of completion tokens equal to kTarget. Prompts are
// four pseudo-random ids drawn from the batch index.
class TargetTokenTask : public RlTask {
 public:
  int64_t nan_at_batch = -1;  // This batch gets a NaN reward.
  int64_t short_batch = -1;   // This batch has one prompt too few.
  // Reward the fraction of even token ids instead: a signal for a real
  // model that never emits kTarget.
  bool reward_even_ids = false;

  StatusOr<std::vector<std::vector<int32_t>>> Prompts(
      int64_t index, int64_t batch_size) override {
    std::mt19937 rng(static_cast<uint32_t>(index) + 11);
    std::vector<std::vector<int32_t>> prompts(
        index == short_batch ? batch_size - 1 : batch_size);
    for (auto& p : prompts)
      for (int t = 0; t < 4; ++t) p.push_back(10 + rng() % 80);
    return prompts;
  }
  Reward Score(int64_t index, int64_t, const SampleOutput& s) override {
    if (index == nan_at_batch)
      return {std::numeric_limits<double>::quiet_NaN(), {}};
    const double hit =
        reward_even_ids
            ? double(std::count_if(s.token_ids.begin(), s.token_ids.end(),
                                   [](int32_t id) { return id % 2 == 0; })) /
                  s.token_ids.size()
            : double(
                  std::count(s.token_ids.begin(), s.token_ids.end(), kTarget)) /
                  s.token_ids.size();
    return {hit, {{"target", hit}}};
  }
};

struct Rig {
  std::unique_ptr<Mesh> rollout = MakeMesh(1, "rollout");
  std::unique_ptr<Mesh> actor = MakeMesh(1, "actor");
  std::unique_ptr<SamplerEngine> engine;
  std::unique_ptr<GrpoLearner> learner;

  // The engine and the learner start from the same weights of `engine_dir`
  // (dummy ones unless `load_format` says otherwise) in `dtype`; the
  // learner's model comes from `learner_dir`.
  explicit Rig(const char* learner_dir = kUntied,
               std::string engine_dir = kUntied,
               std::string load_format = "dummy", std::string dtype = "auto") {
    EngineOptions o;
    o.model.model_dir = std::move(engine_dir);
    o.model.load_format = std::move(load_format);
    o.model.dtype = std::move(dtype);
    o.model.seed = 3;
    o.max_total_tokens = 4096;
    auto e = SamplerEngine::Create(o, rollout.get());
    EXPECT_TRUE(e.ok()) << e.status();
    engine = std::move(e).value();
    ModelSource source = o.model;
    source.model_dir = learner_dir;
    auto initial = LoadModel(source, actor.get());
    EXPECT_TRUE(initial.ok()) << initial.status();
    GrpoOptions g;
    g.lr.peak = 2e-2;
    g.adamw.max_grad_norm = 1.0;
    g.sample_vocab = engine->vocab_size();
    auto l = GrpoLearner::Create(initial->config, initial->weights, actor.get(),
                                 nullptr, g);
    EXPECT_TRUE(l.ok()) << l.status();
    learner = std::move(l).value();
  }
};

// The loop the RL tests run: 8 prompts x 8 completions of up to 8 tokens.
inline RlLoopOptions SmallLoop(int64_t steps, int64_t staleness) {
  RlLoopOptions o;
  o.steps = steps;
  o.batch_size = 8;
  o.num_generations = 8;
  o.max_new_tokens = 8;
  o.max_staleness = staleness;
  o.seed = 5;
  return o;
}

// Runs the loop, keeping every step's metrics.
inline Status RunCollecting(SamplerEngine& engine, GrpoLearner& learner,
                            RlTask& task, const RlLoopOptions& options,
                            std::vector<RlStepMetrics>* steps) {
  return RunRlLoop(engine, learner, task, options,
                   [steps](const RlStepMetrics& m) {
                     steps->push_back(m);
                     return OkStatus();
                   })
      .status();
}

}  // namespace rlrt::testing

#endif  // RLRT_TRAINER_BRIDGE_RL_TEST_UTIL_H_
