// The RL loop end to end on a tiny model: it learns with rollouts
// overlapping training, versions and lags stay within the staleness bound,
// the serial mode is exactly on-policy, and failures (a refused sync, a
// learner error, bad options) stop the run with the sampler's weights intact
// and nothing left generating.
#include "trainer_bridge/rl_loop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <set>
#include <thread>

#include "models/forward/model_source.h"
#include "models/leaf_checksum.h"
#include "models/leaf_copy.h"
#include "models/test_util.h"
#include "trainer_bridge/data_parallel_local.h"
#include "trainer_bridge/rl_test_util.h"

namespace rlrt {
namespace {

using testing::kTarget;
using testing::kTied;
using testing::kUntied;
using testing::Rig;
using testing::RunCollecting;
using testing::SmallLoop;
using testing::TargetTokenTask;

void ExpectNothingInFlight(SamplerEngine& engine) {
  // A control operation runs after the step that finished the last
  // request has published its stats, so it is a barrier for Stats().
  ASSERT_TRUE(engine.WeightsChecksum().ok());
  const SchedulerLoad load = engine.Stats().load;
  EXPECT_EQ(load.running_requests, 0);
  EXPECT_EQ(load.waiting_requests, 0);
}

TEST(RlLoopTest, OverlappedLoopLearnsWithinTheStalenessBound) {
  Rig rig;
  TargetTokenTask task;
  std::vector<RlStepMetrics> steps;
  // Staleness makes the trajectory depend on timing (when an update lands
  // inside a batch), so the bound leaves room: 30 steps, best of the last 10.
  auto summary = RunRlLoop(*rig.engine, *rig.learner, task, SmallLoop(30, 1),
                           [&](const RlStepMetrics& m) {
                             steps.push_back(m);
                             return OkStatus();
                           });
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(steps.size(), 30u);
  EXPECT_LT(steps[0].grpo.reward_mean, 0.2);
  double best_late = 0;
  int lagged = 0;
  for (const RlStepMetrics& m : steps) {
    if (m.step > 20) best_late = std::max(best_late, m.grpo.reward_mean);
    EXPECT_EQ(m.policy_version, uint64_t(m.step));
    ASSERT_TRUE(m.synced);
    EXPECT_EQ(m.sync.version, uint64_t(m.step));
    EXPECT_GE(m.version_lag, 0);
    EXPECT_LE(m.version_lag, 1) << "step " << m.step;
    EXPECT_LE(m.sampled_version_max, uint64_t(m.step - 1));
    EXPECT_DOUBLE_EQ(m.reward_parts.at("target"), m.grpo.reward_mean);
    lagged += m.version_lag == 1;
    // A batch sampled wholly with the previous weights differs from the
    // trainer's: the mismatch metric sees the lag.
    if (m.sampled_version_max + 1 < m.policy_version) {
      EXPECT_GT(m.grpo.logprob_mismatch_max, 0.0) << "step " << m.step;
    }
  }
  std::string curve;
  for (const RlStepMetrics& m : steps)
    curve += std::to_string(m.grpo.reward_mean).substr(0, 4) + " ";
  EXPECT_GT(best_late, 0.8) << curve;
  std::cout << "mean reward per step (staleness 1): " << curve << std::endl;
  // The overlap really happened: batches sampled with the previous weights.
  EXPECT_GT(lagged, 0);
  EXPECT_EQ(rig.engine->Stats().weight_version, 30u);
  EXPECT_EQ(rig.engine->WeightsChecksum()->content_hash,
            ContentHash(rig.learner->weights()));
  EXPECT_DOUBLE_EQ(summary->last_reward_mean, steps.back().grpo.reward_mean);
  ExpectNothingInFlight(*rig.engine);
}

TEST(RlLoopTest, SerialLoopIsExactlyOnPolicy) {
  Rig rig;
  TargetTokenTask task;
  std::vector<RlStepMetrics> steps;
  ASSERT_TRUE(
      RunCollecting(*rig.engine, *rig.learner, task, SmallLoop(3, 0), &steps)
          .ok());
  for (const RlStepMetrics& m : steps) {
    EXPECT_EQ(m.version_lag, 0);
    EXPECT_EQ(m.sampled_version_min, uint64_t(m.step - 1));
    EXPECT_EQ(m.sampled_version_max, uint64_t(m.step - 1));
    // The trainer's logprobs are the sampler's, bit for bit.
    EXPECT_EQ(m.grpo.ratio_mean, 1.0) << m.step;
    EXPECT_EQ(m.grpo.clip_fraction, 0.0);
    EXPECT_EQ(m.grpo.logprob_mismatch_max, 0.0) << m.step;
    EXPECT_EQ(m.grpo.logprob_mismatch_mean, 0.0) << m.step;
    EXPECT_EQ(m.grpo.ratio_min, 1.0) << m.step;
    EXPECT_EQ(m.grpo.ratio_max, 1.0) << m.step;
  }
}

// LoRA: the learner trains an adapter on a frozen base that the engine
// reads in place (one copy for both meshes); syncs carry the adapter alone.
struct LoraRig {
  std::unique_ptr<Mesh> rollout = testing::MakeMesh(1, "rollout");
  std::unique_ptr<Mesh> actor = testing::MakeMesh(1, "actor");
  LoadedModel base;
  std::unique_ptr<SamplerEngine> engine;
  std::unique_ptr<GrpoLearner> learner;

  explicit LoraRig(std::string policy = "latest", std::string dtype = "auto")
      : base(*LoadModel(ModelSource{.model_dir = kUntied,
                                    .preset = "",
                                    .load_format = "dummy",
                                    .seed = 3,
                                    .dtype = dtype},
                        nullptr)) {
    EngineOptions o;
    o.max_total_tokens = 4096;
    o.lora_version_policy = std::move(policy);
    o.lora_resident_versions = 2;
    auto e = SamplerEngine::CreateOnSharedBase(o, rollout.get(), base.config,
                                               base.weights);
    EXPECT_TRUE(e.ok()) << e.status();
    engine = std::move(e).value();
    GrpoOptions g;
    g.lr.peak = 5e-2;
    g.adamw.max_grad_norm = 1.0;
    g.sample_vocab = engine->vocab_size();
    g.lora = LoraConfig{.rank = 8, .alpha = 16};
    auto l =
        GrpoLearner::Create(base.config, base.weights, actor.get(), nullptr, g);
    EXPECT_TRUE(l.ok()) << l.status();
    learner = std::move(l).value();
  }
};

void ExpectSerialLoraLoopOnPolicy(LoraRig& rig) {
  TargetTokenTask task;
  const uint64_t base_hash = ContentHash(rig.base.weights);
  const uint64_t base_version = rig.engine->Stats().weight_version;
  std::vector<RlStepMetrics> steps;
  ASSERT_TRUE(
      RunCollecting(*rig.engine, *rig.learner, task, SmallLoop(3, 0), &steps)
          .ok());
  ASSERT_EQ(steps.size(), 3u);
  for (const RlStepMetrics& m : steps) {
    // Version 1 is the initial adapter, pushed before the first batch.
    EXPECT_EQ(m.sampled_version_min, uint64_t(m.step));
    EXPECT_EQ(m.sampled_version_max, uint64_t(m.step));
    EXPECT_EQ(m.policy_version, uint64_t(m.step + 1));
    EXPECT_EQ(m.grpo.logprob_mismatch_max, 0.0) << m.step;
    EXPECT_EQ(m.grpo.ratio_min, 1.0) << m.step;
    EXPECT_EQ(m.grpo.ratio_max, 1.0) << m.step;
    // Only the adapter travels.
    EXPECT_EQ(m.sync.bytes, rig.learner->adapter()->leaves().total_bytes());
    EXPECT_NE(m.sync.bytes, rig.base.weights.total_bytes());
  }
  EXPECT_EQ(*rig.engine->AdapterVersion("policy"), 4u);
  EXPECT_EQ(rig.engine->Stats().weight_version, base_version);
  EXPECT_EQ(ContentHash(rig.base.weights), base_hash);
  ExpectNothingInFlight(*rig.engine);
}

TEST(RlLoopTest, SerialLoraLoopIsExactlyOnPolicyAndSendsOnlyTheAdapter) {
  LoraRig rig;
  ExpectSerialLoraLoopOnPolicy(rig);
}

TEST(RlLoopTest, SerialLoraLoopOnABf16BaseIsExactlyOnPolicy) {
  LoraRig rig("latest", "bfloat16");
  ASSERT_EQ(rig.engine->weight_dtype(), DType::kBF16);
  ExpectSerialLoraLoopOnPolicy(rig);
}

// Under "pin" every sequence finishes with the adapter version it was
// submitted under, so each batch (submitted between two syncs) is sampled
// by one version even while the next sync lands.
TEST(RlLoopTest, OverlappedLoraLoopWithPinnedVersionsSamplesEachBatchWithOne) {
  LoraRig rig("pin");
  TargetTokenTask task;
  std::vector<RlStepMetrics> steps;
  RlLoopOptions loop = SmallLoop(8, 1);
  loop.max_new_tokens = 24;
  ASSERT_TRUE(
      RunCollecting(*rig.engine, *rig.learner, task, loop, &steps).ok());
  for (const RlStepMetrics& m : steps) {
    EXPECT_EQ(m.sampled_version_min, m.sampled_version_max) << m.step;
    EXPECT_LE(m.version_lag, 2) << m.step;
    // A batch of the policy it trains has no mismatch at all.
    if (m.sampled_version_min + 1 == m.policy_version) {
      EXPECT_EQ(m.grpo.logprob_mismatch_max, 0.0) << m.step;
    }
  }
  ExpectNothingInFlight(*rig.engine);
}

// Mixed precision: the learner keeps float32 master weights and trains a
// BF16 copy, which is what the sampler receives, so the two sides still
// agree bit for bit, and the synthetic reward is still learned.
TEST(RlLoopTest, Bf16LoopIsExactlyOnPolicyAndLearns) {
  Rig rig(kUntied, kUntied, "dummy", "bfloat16");
  ASSERT_EQ(rig.engine->weight_dtype(), DType::kBF16);
  ASSERT_EQ(DecoderMatrixDType(rig.learner->weights().specs()), DType::kBF16);
  ASSERT_EQ(DecoderMatrixDType(rig.learner->master_specs()), DType::kF32);
  TargetTokenTask task;
  std::vector<RlStepMetrics> steps;
  ASSERT_TRUE(
      RunCollecting(*rig.engine, *rig.learner, task, SmallLoop(20, 0), &steps)
          .ok());
  double best_late = 0;
  std::string curve;
  for (const RlStepMetrics& m : steps) {
    EXPECT_EQ(m.version_lag, 0);
    EXPECT_EQ(m.grpo.logprob_mismatch_max, 0.0) << m.step;
    EXPECT_EQ(m.grpo.ratio_min, 1.0) << m.step;
    EXPECT_EQ(m.grpo.ratio_max, 1.0) << m.step;
    if (m.step > 10) best_late = std::max(best_late, m.grpo.reward_mean);
    curve += std::to_string(m.grpo.reward_mean).substr(0, 4) + " ";
  }
  EXPECT_LT(steps.front().grpo.reward_mean, 0.2);
  EXPECT_GT(best_late, 0.8) << curve;
  std::cout << "mean reward per step (bfloat16): " << curve << std::endl;
  EXPECT_EQ(rig.engine->WeightsChecksum()->content_hash,
            ContentHash(rig.learner->weights()));
  // The master really is finer than its copy: some update smaller than
  // half a BF16 step moved the master and not the copy. The copy is the
  // master rounded to the nearest BF16 value (ties away from zero),
  // found here by comparing the two neighbours in double.
  const ParamLeaves& copy = rig.learner->weights();
  int64_t finer = 0, wrong = 0;
  ASSERT_TRUE(rig.learner
                  ->WithMasterWeights([&](const ParamLeaves& master) {
                    for (size_t i = 0; i < master.size(); ++i) {
                      const DType dtype = copy.spec(i).dtype;
                      for (int64_t k = 0; k < master.spec(i).NumElements();
                           ++k) {
                        const float m = master.F32(i)[k];
                        const float c = LoadAsF32(copy.data(i), dtype, k);
                        const float rounded =
                            dtype == DType::kBF16
                                ? Bf16ToF32(testing::NearestBf16TiesAwayBits(m))
                                : m;
                        wrong += std::memcmp(&c, &rounded, 4) != 0;
                        finer += m != c;
                      }
                    }
                    return OkStatus();
                  })
                  .ok());
  EXPECT_EQ(wrong, 0) << "the copy is not the master rounded to nearest";
  EXPECT_GT(finer, 0);
}

// The same on a real pretrained model with its own tokenizer: the
// stories260K Llama, sampled in the engine and trained by the learner, whose
// weights change every step and are pushed before the next batch.
TEST(RlLoopTest, SerialLoopOnStories260KHasNoTrainingInferenceMismatch) {
  const std::string stories = RLRT_SHARED_DIR "/models/stories260K";
  Rig rig(stories.c_str(), stories, "safetensors");
  TargetTokenTask task;
  task.reward_even_ids = true;
  std::vector<RlStepMetrics> steps;
  ASSERT_TRUE(
      RunCollecting(*rig.engine, *rig.learner, task, SmallLoop(3, 0), &steps)
          .ok());
  ASSERT_EQ(steps.size(), 3u);
  std::set<uint64_t> pushed;
  for (const RlStepMetrics& m : steps) {
    EXPECT_EQ(m.sampled_version_min, uint64_t(m.step - 1));
    pushed.insert(m.sync.content_hash);
    EXPECT_EQ(m.grpo.logprob_mismatch_max, 0.0) << m.step;
    EXPECT_EQ(m.grpo.ratio_min, 1.0) << m.step;
    EXPECT_EQ(m.grpo.ratio_max, 1.0) << m.step;
  }
  EXPECT_EQ(pushed.size(), 3u) << "the weights did not change every step";
  EXPECT_EQ(rig.engine->WeightsChecksum()->content_hash,
            ContentHash(rig.learner->weights()));
}

// Truncated importance sampling: on-policy the trainer's logprobs are the
// sampler's bit for bit, so every weight is exactly 1; with stale batches
// the weights move away from 1 and the cap cuts some.
TEST(RlLoopTest, TruncatedImportanceWeightsAreOneOnPolicyOnly) {
  for (int64_t staleness : {0, 1}) {
    Rig rig;
    GrpoOptions g = rig.learner->options();
    g.tis_cap = 1.05;
    auto initial = LoadModel(
        {.model_dir = kUntied, .preset = "", .load_format = "dummy", .seed = 3},
        rig.actor.get());
    ASSERT_TRUE(initial.ok());
    auto learner = GrpoLearner::Create(initial->config, initial->weights,
                                       rig.actor.get(), nullptr, g);
    ASSERT_TRUE(learner.ok());
    TargetTokenTask task;
    std::vector<RlStepMetrics> steps;
    ASSERT_TRUE(RunCollecting(*rig.engine, **learner, task,
                              SmallLoop(8, staleness), &steps)
                    .ok());
    double furthest = 0, capped = 0;
    for (const RlStepMetrics& m : steps) {
      furthest = std::max(furthest, std::fabs(m.grpo.tis_weight_mean - 1));
      capped += m.grpo.tis_capped_fraction;
    }
    if (staleness == 0) {
      EXPECT_EQ(furthest, 0.0);
      EXPECT_EQ(capped, 0.0);
    } else {
      EXPECT_GT(furthest, 0.0);
    }
  }
}

// DAPO's overlong shaping: with a buffer of 4 on 8 new tokens, completions
// longer than 4 tokens lose reward, reported as the part "overlong".
TEST(RlLoopTest, OverlongShapingLowersTheRewardOfLongCompletions) {
  Rig rig;
  TargetTokenTask task;
  RlLoopOptions options = SmallLoop(2, 0);
  options.overlong_buffer = 4;
  options.overlong_penalty = 0.5;
  std::vector<RlStepMetrics> steps;
  ASSERT_TRUE(
      RunCollecting(*rig.engine, *rig.learner, task, options, &steps).ok());
  for (const RlStepMetrics& m : steps) {
    const double overlong = m.reward_parts.at("overlong");
    EXPECT_NEAR(m.grpo.reward_mean,
                m.reward_parts.at("target") + 0.5 * overlong, 1e-12);
    EXPECT_GE(overlong, -1.0);
    // The random model rarely stops early: most completions reach 8 tokens.
    EXPECT_LT(overlong, -0.5) << m.grpo.completion_length_mean;
  }
  options.overlong_buffer = 9;  // More than max_new_tokens.
  EXPECT_FALSE(
      RunCollecting(*rig.engine, *rig.learner, task, options, &steps).ok());
}

TEST(RlLoopTest, SyncEveryKStepsPushesOnlyThenAndAtTheEnd) {
  Rig rig;
  TargetTokenTask task;
  RlLoopOptions o = SmallLoop(5, 0);
  o.sync_every = 2;
  std::vector<bool> synced;
  ASSERT_TRUE(RunRlLoop(*rig.engine, *rig.learner, task, o,
                        [&](const RlStepMetrics& m) {
                          synced.push_back(m.synced);
                          return OkStatus();
                        })
                  .ok());
  EXPECT_EQ(synced, (std::vector<bool>{false, true, false, true, true}));
  EXPECT_EQ(rig.engine->Stats().updates_applied, 3);
  EXPECT_EQ(rig.engine->Stats().weight_version, 5u);
}

// A stop request (a time budget, a signal) makes the step in progress the
// last: its weights are pushed even off the sync period, the batch sampled
// ahead is abandoned, and the run ends normally.
TEST(RlLoopTest, AStopRequestEndsTheRunAfterThatStepWithItsWeightsPushed) {
  Rig rig;
  TargetTokenTask task;
  RlLoopOptions o = SmallLoop(10, 1);
  o.sync_every = 4;
  int stop_checks = 0;
  o.stop_requested = [&] { return ++stop_checks == 3; };
  std::vector<bool> synced;
  auto summary = RunRlLoop(*rig.engine, *rig.learner, task, o,
                           [&](const RlStepMetrics& m) {
                             synced.push_back(m.synced);
                             return OkStatus();
                           });
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(summary->stopped_early);
  EXPECT_EQ(summary->steps, 3);
  EXPECT_EQ(synced, (std::vector<bool>{false, false, true}));
  EXPECT_EQ(summary->final_version, 3u);
  EXPECT_EQ(rig.engine->Stats().weight_version, 3u);
  EXPECT_EQ(rig.engine->WeightsChecksum()->content_hash,
            ContentHash(rig.learner->weights()));
  // Nothing is left running in the sampler.
  EXPECT_EQ(rig.engine->Stats().load.running_requests, 0);
  EXPECT_EQ(rig.engine->Stats().load.waiting_requests, 0);
}

TEST(RlLoopTest, RefusedSyncStopsTheRunAndTheSamplerKeepsItsWeights) {
  // The learner trains a model of another structure (tied embeddings), so
  // its first update cannot apply to the sampler.
  Rig rig(kTied);
  const LeafChecksums before = *rig.engine->WeightsChecksum();
  TargetTokenTask task;
  int callbacks = 0;
  auto result = RunRlLoop(*rig.engine, *rig.learner, task, SmallLoop(4, 2),
                          [&](const RlStepMetrics&) {
                            ++callbacks;
                            return OkStatus();
                          });
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("sync after step 1 failed"),
            std::string::npos)
      << result.status();
  EXPECT_NE(result.status().message().find("keeps version 0"),
            std::string::npos)
      << result.status();
  EXPECT_EQ(callbacks, 0);
  const LeafChecksums after = *rig.engine->WeightsChecksum();
  EXPECT_EQ(after.content_hash, before.content_hash);
  EXPECT_EQ(rig.engine->Stats().weight_version, 0u);
  EXPECT_EQ(rig.engine->Stats().updates_refused, 1);
  // The batches sampled ahead were aborted, not left running.
  ExpectNothingInFlight(*rig.engine);
  // And the engine still serves.
  GenerateRequest r;
  r.input_ids = {3, 4, 5};
  r.stop.max_new_tokens = 4;
  EXPECT_TRUE(rig.engine->Generate(r).ok());
}

TEST(RlLoopTest, LearnerErrorStopsTheRunBeforeAnythingReachesTheSampler) {
  Rig rig;
  TargetTokenTask task;
  task.nan_at_batch = 1;
  auto result = RunRlLoop(*rig.engine, *rig.learner, task, SmallLoop(4, 1));
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("GRPO step 2"), std::string::npos)
      << result.status();
  EXPECT_NE(result.status().message().find("non-finite reward"),
            std::string::npos)
      << result.status();
  // Step 1 was pushed; step 2 was refused before any update.
  EXPECT_EQ(rig.engine->Stats().weight_version, 1u);
  EXPECT_EQ(rig.engine->WeightsChecksum()->content_hash,
            ContentHash(rig.learner->weights()));
  ExpectNothingInFlight(*rig.engine);
}

// Aborts the first request it is given as soon as it is queued, so that
// collecting the first batch fails while that batch's other requests are
// still generating.
class AbortFirstRequest : public RolloutBackend {
 public:
  explicit AbortFirstRequest(RolloutBackend& inner) : inner_(inner) {}
  StatusOr<RequestHandle> Submit(GenerateRequest request) override {
    ASSIGN_OR_RETURN(RequestHandle handle, inner_.Submit(std::move(request)));
    if (handles.empty()) inner_.Abort(handle);
    handles.push_back(handle);
    return handle;
  }
  void Abort(const RequestHandle& handle) override { inner_.Abort(handle); }
  StatusOr<SyncReport> PushWeights(const ParamLeaves& weights,
                                   uint64_t version) override {
    return inner_.PushWeights(weights, version);
  }
  StatusOr<uint64_t> WeightVersion() override { return inner_.WeightVersion(); }
  int64_t vocab_size() const override { return inner_.vocab_size(); }

  std::vector<RequestHandle> handles;

 private:
  RolloutBackend& inner_;
};

TEST(RlLoopTest, AFailedCollectionAbortsTheRestOfItsBatch) {
  Rig rig;
  TargetTokenTask task;
  LocalRollouts local(rig.engine.get(), rig.actor.get());
  AbortFirstRequest rollouts(local);
  RlLoopOptions options = SmallLoop(2, 0);
  // Long enough (the context is 64) that the batch's other requests are
  // still running when the aborted one comes back.
  options.max_new_tokens = 60;
  auto result = RunRlLoop(rollouts, *rig.learner, task, options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kAborted) << result.status();
  EXPECT_NE(result.status().message().find("batch 0"), std::string::npos)
      << result.status();
  ASSERT_EQ(rollouts.handles.size(), 8u);
  // Every request of the failed batch has ended by the time the loop
  // returns.
  for (const RequestHandle& h : rollouts.handles)
    EXPECT_TRUE(h.done()) << "request " << h.id() << " still in flight";
  ExpectNothingInFlight(*rig.engine);
  EXPECT_EQ(rig.engine->Stats().weight_version, 0u);
}

TEST(RlLoopTest, ATaskGivingTheWrongBatchSizeStopsTheRun) {
  Rig rig;
  TargetTokenTask task;
  task.short_batch = 2;
  auto result = RunRlLoop(*rig.engine, *rig.learner, task, SmallLoop(4, 1));
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("7 prompts for a batch of 8"),
            std::string::npos)
      << result.status();
  ExpectNothingInFlight(*rig.engine);
}

TEST(RlLoopTest, RejectsInconsistentOptionsBeforeStarting) {
  Rig rig;
  TargetTokenTask task;
  const std::vector<std::pair<RlLoopOptions, std::string>> cases = [] {
    std::vector<std::pair<RlLoopOptions, std::string>> c;
    RlLoopOptions o = SmallLoop(2, 1);
    o.temperature = 0.7f;
    c.push_back({o, "temperature"});
    o = SmallLoop(0, 1);
    c.push_back({o, "steps"});
    o = SmallLoop(2, 1);
    o.num_generations = 1;
    c.push_back({o, "num_generations"});
    o = SmallLoop(2, -1);
    c.push_back({o, "max_staleness"});
    o = SmallLoop(2, 1);
    o.sync_every = 0;
    c.push_back({o, "sync_every"});
    return c;
  }();
  for (const auto& [options, needle] : cases) {
    auto result = RunRlLoop(*rig.engine, *rig.learner, task, options);
    ASSERT_FALSE(result.ok()) << needle;
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(result.status().message().find(needle), std::string::npos)
        << result.status();
  }
  EXPECT_EQ(rig.engine->Stats().scheduler.finished_requests, 0);

  // A learner normalising over another vocabulary than the sampler's.
  ModelSource dummy;
  dummy.model_dir = kUntied;
  dummy.load_format = "dummy";
  dummy.seed = 3;
  auto source = LoadModel(dummy, rig.actor.get());
  ASSERT_TRUE(source.ok());
  GrpoOptions g;
  g.sample_vocab = rig.engine->vocab_size() - 10;
  auto other = GrpoLearner::Create(source->config, source->weights,
                                   rig.actor.get(), nullptr, g);
  ASSERT_TRUE(other.ok());
  auto result = RunRlLoop(*rig.engine, **other, task, SmallLoop(2, 1));
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("normalises logprobs over"),
            std::string::npos)
      << result.status();
}

}  // namespace
}  // namespace rlrt

namespace rlrt {
namespace {

// Two ranks (threads, each with its own engine and learner) and one
// process run the same serial loop: every prompt is sampled with the same
// seed and the row-invariant kernels, so the rollouts and the step
// metrics computed from them agree exactly; the weights differ only by the
// order the gradients were added, and both ranks end with identical ones.
TEST(RlLoopTest, TwoDataParallelRanksMatchOneProcess) {
  const RlLoopOptions options = SmallLoop(3, 0);
  auto run = [&](DataParallelGroup* group, std::vector<RlStepMetrics>* steps,
                 std::vector<float>* weights) {
    Rig rig;
    rig.learner->set_data_parallel(group);
    TargetTokenTask task;
    ASSERT_TRUE(
        RunCollecting(*rig.engine, *rig.learner, task, options, steps).ok());
    const ParamLeaves& w = rig.learner->weights();
    for (size_t i = 0; i < w.size(); ++i)
      weights->insert(weights->end(), w.F32(i).begin(), w.F32(i).end());
    // The engine serves what the learner holds.
    auto served = rig.engine->WeightsChecksum();
    ASSERT_TRUE(served.ok());
    EXPECT_EQ(served->content_hash, ContentHash(w));
  };
  std::vector<RlStepMetrics> one_steps;
  std::vector<float> one_weights;
  run(nullptr, &one_steps, &one_weights);

  auto groups = CreateLocalGroups(2);
  std::vector<std::vector<RlStepMetrics>> rank_steps(2);
  std::vector<std::vector<float>> rank_weights(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back(
        [&, r] { run(groups[r].get(), &rank_steps[r], &rank_weights[r]); });
  for (std::thread& t : ranks) t.join();

  EXPECT_EQ(rank_weights[0], rank_weights[1]);
  ASSERT_EQ(one_steps.size(), 3u);
  for (int r = 0; r < 2; ++r) ASSERT_EQ(rank_steps[r].size(), 3u);
  // Step 1 samples with the initial weights on both sides: its rollouts
  // are identical, so are the rewards and the tokens.
  EXPECT_EQ(rank_steps[0][0].grpo.reward_mean, one_steps[0].grpo.reward_mean);
  EXPECT_EQ(rank_steps[0][0].rollout_tokens, one_steps[0].rollout_tokens);
  EXPECT_EQ(rank_steps[0][0].reward_parts, one_steps[0].reward_parts);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(rank_steps[0][k].grpo.reward_mean,
              rank_steps[1][k].grpo.reward_mean);
    EXPECT_EQ(rank_steps[0][k].grpo.train_tokens,
              one_steps[k].grpo.train_tokens);
    EXPECT_NEAR(rank_steps[0][k].grpo.loss, one_steps[k].grpo.loss, 1e-6);
    EXPECT_EQ(rank_steps[0][k].grpo.logprob_mismatch_max, 0.0);
  }
  ASSERT_EQ(one_weights.size(), rank_weights[0].size());
  double max_diff = 0;
  for (size_t i = 0; i < one_weights.size(); ++i)
    max_diff = std::max(max_diff,
                        std::fabs(double(one_weights[i]) - rank_weights[0][i]));
  EXPECT_LE(max_diff, 1e-5);
  std::cout << "1 process vs 2 ranks after 3 steps: max |dw| " << max_diff
            << "\n";
}

TEST(WeightSyncTest, NonFiniteWeightsNeverReachTheSampler) {
  Rig rig;
  const LeafChecksums before = *rig.engine->WeightsChecksum();
  const ParamLeaves& weights = rig.learner->weights();
  auto poisoned = ParamLeaves::Allocate(weights.specs());
  ASSERT_TRUE(poisoned.ok());
  ASSERT_TRUE(ConvertLeaves(weights, *poisoned, nullptr).ok());
  StoreFromF32(poisoned->data(3), poisoned->spec(3).dtype, 5,
               std::numeric_limits<float>::quiet_NaN());
  WeightSync sync(rig.engine.get(), rig.actor.get());
  auto pushed = sync.Push(*poisoned, 1);
  ASSERT_FALSE(pushed.ok());
  EXPECT_NE(pushed.status().message().find("non-finite"), std::string::npos)
      << pushed.status();
  EXPECT_EQ(rig.engine->WeightsChecksum()->content_hash, before.content_hash);
  EXPECT_EQ(rig.engine->Stats().weight_version, 0u);
  EXPECT_EQ(rig.engine->Stats().updates_refused, 0);  // Never sent.
}

}  // namespace
}  // namespace rlrt
