// Supervised fine-tuning through the learner: its accumulated gradient over
// micro-batches equals one direct forward/backward of the token
// cross-entropy over the whole batch, and repeated steps fit the data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "models/forward/model_source.h"
#include "models/test_util.h"
#include "models/train/losses.h"
#include "models/train/trainable_transformer.h"
#include "trainer_bridge/grpo_learner.h"

namespace rlrt {
namespace {

constexpr char kFixture[] =
    RLRT_SOURCE_DIR "/tests/reference/fixtures/qwen3_untied";

std::vector<SftExample> Examples() {
  return {{{5, 6, 7}, {8, 9, 10, 11}},
          {{12, 13}, {14, 15, 16}},
          {{20, 21, 22, 23}, {24, 25}},
          {{30}, {31, 32, 33, 34, 35}}};
}

LoadedModel Load() {
  ModelSource source;
  source.model_dir = kFixture;
  source.load_format = "safetensors";
  auto m = LoadModel(source, nullptr);
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(m).value();
}

std::vector<float> Flatten(const ParamLeaves& leaves) {
  std::vector<float> out;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const float* p = reinterpret_cast<const float*>(leaves.data(i));
    out.insert(out.end(), p, p + leaves.bytes(i) / sizeof(float));
  }
  return out;
}

TEST(SftTest, MicroBatchedGradientEqualsTheWholeBatchGradient) {
  const LoadedModel m = Load();
  const std::vector<SftExample> batch = Examples();

  // Direct: all four sequences in one forward, CE over every completion
  // token, one backward.
  auto model = TrainableTransformer::Create(m.config, m.weights, nullptr);
  ASSERT_TRUE(model.ok());
  std::vector<std::vector<int32_t>> tokens(batch.size()), targets(batch.size());
  std::vector<TrainSequence> sequences;
  int64_t n = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    tokens[i] = batch[i].prompt;
    tokens[i].insert(tokens[i].end(), batch[i].tokens.begin(),
                     batch[i].tokens.end());
    for (size_t t = batch[i].prompt.size() - 1; t + 1 < tokens[i].size(); ++t)
      targets[i].push_back(static_cast<int32_t>(t));
    n += targets[i].size();
    sequences.push_back({tokens[i], targets[i]});
  }
  std::vector<float> logp(n), dlogp(n);
  ASSERT_TRUE((*model)->Forward(sequences, 1.0f, logp).ok());
  const double loss = *CrossEntropyLoss(logp, dlogp);
  auto direct = ParamLeaves::Allocate(m.weights.specs());
  ASSERT_TRUE(direct.ok());
  ASSERT_TRUE((*model)->Backward(dlogp, *direct).ok());

  // Through the learner, one sequence per micro-batch.
  GrpoOptions options;
  options.max_micro_batch_tokens = 8;
  options.lr.peak = 1e-3;
  auto learner =
      GrpoLearner::Create(m.config, m.weights, nullptr, nullptr, options);
  ASSERT_TRUE(learner.ok()) << learner.status();
  auto metrics = (*learner)->SftStep(batch);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_NEAR(metrics->loss, loss, 1e-6 * std::fabs(loss));
  EXPECT_EQ(metrics->tokens, n);
  const std::vector<float> a = Flatten(*direct);
  const std::vector<float> b = Flatten((*learner)->gradients());
  ASSERT_EQ(a.size(), b.size());
  double scale = 0;
  for (float x : a) scale = std::max(scale, std::fabs(double(x)));
  ASSERT_GT(scale, 0);
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(b[i], a[i], 1e-5 * scale) << i;
}

TEST(SftTest, RepeatedStepsFitTheData) {
  const LoadedModel m = Load();
  GrpoOptions options;
  options.lr.peak = 1e-2;
  auto learner =
      GrpoLearner::Create(m.config, m.weights, nullptr, nullptr, options);
  ASSERT_TRUE(learner.ok());
  const std::vector<SftExample> batch = Examples();
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    auto metrics = (*learner)->SftStep(batch);
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    if (step == 0) first = metrics->loss;
    last = metrics->loss;
  }
  EXPECT_GT(first, 3.0);  // About log(96) for a random model.
  EXPECT_LT(last, 0.25 * first) << first << " -> " << last;
}

TEST(SftTest, RejectsBadBatchesWithoutTouchingTheWeights) {
  const LoadedModel m = Load();
  GrpoOptions options;
  options.max_micro_batch_tokens = 16;
  auto learner =
      GrpoLearner::Create(m.config, m.weights, nullptr, nullptr, options);
  ASSERT_TRUE(learner.ok());
  EXPECT_FALSE((*learner)->SftStep({}).ok());
  const std::vector<SftExample> no_tokens = {{{1, 2}, {}}};
  EXPECT_FALSE((*learner)->SftStep(no_tokens).ok());
  const std::vector<SftExample> too_long = {
      {std::vector<int32_t>(10, 3), std::vector<int32_t>(10, 4)}};
  EXPECT_FALSE((*learner)->SftStep(too_long).ok());
  const std::vector<SftExample> bad_id = {{{1, 2}, {500}}};
  EXPECT_FALSE((*learner)->SftStep(bad_id).ok());
  EXPECT_TRUE(testing::SameBytes((*learner)->weights(), m.weights));
  EXPECT_EQ((*learner)->optimizer_steps(), 0);
}

}  // namespace
}  // namespace rlrt
