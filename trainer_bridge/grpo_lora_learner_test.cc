// GrpoLearner with GrpoOptions::lora: the base is read in place and never
// written, step 0 is the base exactly (on-policy ratio 1, KL 0 against the
// base as reference), only the adapter moves, and SFT on the adapter lowers
// its loss.
#include <gtest/gtest.h>

#include <vector>

#include "models/leaf_checksum.h"
#include "models/train/train_test_util.h"
#include "models/train/trainable_transformer.h"
#include "trainer_bridge/grpo_learner.h"

namespace rlrt {
namespace {

uint64_t Hash(const ParamLeaves& leaves) {
  return ContentHash(
      leaves, [&](size_t i) { return leaves.data(i); }, nullptr);
}

// Two groups of two completions, rewards 0 and 1, with behaviour logprobs
// the base itself gives (what a sampler serving the base reports).
std::vector<Completion> TwoGroupsScoredByTheBase(
    const LoadedCheckpoint& model) {
  auto base = TrainableTransformer::Create(model.config, model.leaves, nullptr);
  EXPECT_TRUE(base.ok());
  std::vector<Completion> batch;
  for (int group = 0; group < 2; ++group) {
    for (int member = 0; member < 2; ++member) {
      Completion c;
      c.prompt = {11 + group, 23, 35, 47};
      c.tokens = {5 + member, 9, 13 + group};
      std::vector<int32_t> ids = c.prompt;
      ids.insert(ids.end(), c.tokens.begin(), c.tokens.end());
      const std::vector<int32_t> targets = {3, 4, 5};
      const TrainSequence seq{ids, targets};
      c.behaviour_logprobs.resize(3);
      EXPECT_TRUE((*base)->Forward({&seq, 1}, 1.0f, c.behaviour_logprobs).ok());
      c.reward = member;
      batch.push_back(c);
    }
  }
  return batch;
}

TEST(GrpoLoraLearnerTest, StepZeroIsTheBaseAndOnlyTheAdapterMoves) {
  const LoadedCheckpoint model = testing::LoadFixture("qwen3_untied");
  GrpoOptions options;
  options.lora = LoraConfig{};
  options.lora->rank = 4;
  options.lora->alpha = 8;
  options.loss.beta = 0.04;
  options.lr.peak = 1e-2;
  auto learner = GrpoLearner::Create(model.config, model.leaves, nullptr,
                                     nullptr, options);
  ASSERT_TRUE(learner.ok()) << learner.status();
  ASSERT_NE((*learner)->adapter(), nullptr);
  EXPECT_EQ((*learner)->weights().fingerprint(),
            (*learner)->adapter()->leaves().fingerprint());
  const uint64_t base_before = Hash(model.leaves);
  const uint64_t adapter_before = Hash((*learner)->weights());

  const std::vector<Completion> batch = TwoGroupsScoredByTheBase(model);
  auto step = (*learner)->Step(batch, 2);
  ASSERT_TRUE(step.ok()) << step.status();
  // B = 0: the policy is the base, bit for bit.
  EXPECT_EQ(step->logprob_mismatch_max, 0.0);
  EXPECT_DOUBLE_EQ(step->ratio_mean, 1.0);
  EXPECT_EQ(step->kl, 0.0);
  EXPECT_GT(step->grad_norm, 0.0);
  EXPECT_EQ(Hash(model.leaves), base_before) << "the base must stay frozen";
  EXPECT_NE(Hash((*learner)->weights()), adapter_before);

  // The next step sees a policy that moved away from the reference.
  auto second = (*learner)->Step(batch, 2);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GT(second->kl, 0.0);
  EXPECT_GT(second->logprob_mismatch_max, 0.0);
  EXPECT_EQ(Hash(model.leaves), base_before);
}

TEST(GrpoLoraLearnerTest, SftOnTheAdapterLowersTheLoss) {
  const LoadedCheckpoint model = testing::LoadFixture("qwen3_untied");
  GrpoOptions options;
  options.lora = LoraConfig{};
  options.lora->rank = 8;
  options.lora->alpha = 16;
  options.lr.peak = 3e-2;
  auto learner = GrpoLearner::Create(model.config, model.leaves, nullptr,
                                     nullptr, options);
  ASSERT_TRUE(learner.ok()) << learner.status();
  const std::vector<SftExample> batch = {{{3, 4, 5}, {40, 41, 42, 43}},
                                         {{9, 8}, {40, 41, 42, 43}}};
  double first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    auto m = (*learner)->SftStep(batch);
    ASSERT_TRUE(m.ok()) << m.status();
    if (step == 0) first = m->loss;
    last = m->loss;
  }
  EXPECT_LT(last, 0.5 * first) << first << " -> " << last;
}

TEST(GrpoLoraLearnerTest, BadLoraConfigIsRefused) {
  const LoadedCheckpoint model = testing::LoadFixture("qwen3_untied");
  GrpoOptions options;
  options.lora = LoraConfig{};
  options.lora->rank = 0;
  EXPECT_FALSE(
      GrpoLearner::Create(model.config, model.leaves, nullptr, nullptr, options)
          .ok());
  options.lora->rank = 4;
  options.lora->target_mask = 0;
  EXPECT_FALSE(
      GrpoLearner::Create(model.config, model.leaves, nullptr, nullptr, options)
          .ok());
}

}  // namespace
}  // namespace rlrt
