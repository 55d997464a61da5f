// GrpoLearner::Step is all or nothing, also across its iterations.
#include "trainer_bridge/grpo_learner.h"

#include <gtest/gtest.h>

#include <vector>

#include "models/dtype.h"
#include "models/forward/model_source.h"
#include "models/leaf_checksum.h"

namespace rlrt {
namespace {

constexpr char kModel[] =
    RLRT_SOURCE_DIR "/tests/reference/fixtures/qwen3_untied";

LoadedModel LoadFixture() {
  auto model = LoadModel(
      {.model_dir = kModel, .preset = "", .load_format = "auto", .seed = 0},
      nullptr);
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(model).value();
}

// Two groups of two completions with rewards 0 and 1, so every advantage
// is non-zero and every iteration has a gradient.
std::vector<Completion> TwoGroups() {
  std::vector<Completion> batch;
  for (int group = 0; group < 2; ++group) {
    for (int member = 0; member < 2; ++member) {
      Completion c;
      c.prompt = {11 + group, 23, 35, 47};
      c.tokens = {5 + member, 9, 13 + group};
      c.behaviour_logprobs.assign(c.tokens.size(), -4.0f);
      c.reward = member;
      batch.push_back(c);
    }
  }
  return batch;
}

TEST(GrpoLearnerTest,
     AFailureAtTheSecondOfThreeIterationsLeavesNothingChanged) {
  const LoadedModel model = LoadFixture();
  GrpoOptions options;
  options.num_iterations = 3;
  // The first iteration succeeds and moves every weight by about 1e30;
  // the second iteration's forward then overflows, so its loss is not
  // finite and the step must be refused as a whole.
  options.lr.peak = 1e30;
  auto learner = GrpoLearner::Create(model.config, model.weights, nullptr,
                                     nullptr, options);
  ASSERT_TRUE(learner.ok()) << learner.status();
  const uint64_t weights_before = ContentHash((*learner)->weights());
  const uint64_t m_before = ContentHash((*learner)->optimizer().first_moment());
  const uint64_t v_before =
      ContentHash((*learner)->optimizer().second_moment());

  const std::vector<Completion> batch = TwoGroups();
  StatusOr<GrpoStepMetrics> step = (*learner)->Step(batch, 2);
  ASSERT_FALSE(step.ok());
  EXPECT_EQ(step.status().code(), StatusCode::kFailedPrecondition)
      << step.status();
  EXPECT_NE(step.status().message().find("at iteration 1"), std::string::npos)
      << step.status();
  EXPECT_EQ(ContentHash((*learner)->weights()), weights_before);
  EXPECT_EQ(ContentHash((*learner)->optimizer().first_moment()), m_before);
  EXPECT_EQ(ContentHash((*learner)->optimizer().second_moment()), v_before);
  EXPECT_EQ((*learner)->optimizer_steps(), 0);
}

TEST(GrpoLearnerTest, ASuccessfulMultiIterationStepAppliesEveryIteration) {
  const LoadedModel model = LoadFixture();
  GrpoOptions options;
  options.num_iterations = 3;
  auto learner = GrpoLearner::Create(model.config, model.weights, nullptr,
                                     nullptr, options);
  ASSERT_TRUE(learner.ok());
  StatusOr<GrpoStepMetrics> step = (*learner)->Step(TwoGroups(), 2);
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ((*learner)->optimizer_steps(), 3);
  EXPECT_NE(ContentHash((*learner)->weights()), ContentHash(model.weights));
}

// BF16 weights: gradients kept in BF16 (the default) take half the bytes of
// the layer matrices' float32 ones and give the same step up to their rounding;
// float32 weights keep float32 gradients whatever the option says.
TEST(GrpoLearnerTest, Bf16GradientsHalveTheMatricesAndTrackTheFloat32Step) {
  auto model = LoadModel({.model_dir = kModel,
                          .preset = "",
                          .load_format = "auto",
                          .seed = 0,
                          .dtype = "bfloat16"},
                         nullptr);
  ASSERT_TRUE(model.ok()) << model.status();
  // The layers' matrices are halved; the embedding, the LM head and the
  // vectors stay float32.
  size_t matrix_bytes = 0, vector_bytes = 0;
  for (const LeafSpec& spec : model->weights.specs()) {
    const bool layer_matrix =
        spec.dtype == DType::kBF16 && spec.name.starts_with("model.layers.");
    (layer_matrix ? matrix_bytes : vector_bytes) +=
        spec.NumElements() * sizeof(float);
  }
  ASSERT_GT(matrix_bytes, 0u);
  GrpoOptions options;
  options.max_micro_batch_tokens = 14;  // two micro-batches accumulate
  options.adamw.max_grad_norm = 0;
  std::vector<GrpoStepMetrics> steps;
  std::vector<uint64_t> hashes;
  for (bool bf16 : {true, false}) {
    options.bf16_gradients = bf16;
    auto learner = GrpoLearner::Create(model->config, model->weights, nullptr,
                                       nullptr, options);
    ASSERT_TRUE(learner.ok()) << learner.status();
    EXPECT_EQ((*learner)->gradient_bytes(),
              (bf16 ? matrix_bytes / 2 : matrix_bytes) + vector_bytes);
    StatusOr<GrpoStepMetrics> step = (*learner)->Step(TwoGroups(), 2);
    ASSERT_TRUE(step.ok()) << step.status();
    steps.push_back(*step);
    hashes.push_back(ContentHash((*learner)->weights()));
    EXPECT_NE(hashes.back(), ContentHash(model->weights));
  }
  EXPECT_GT(steps[1].grad_norm, 0);
  EXPECT_NE(steps[0].grad_norm, steps[1].grad_norm);  // rounded: not equal
  EXPECT_NEAR(steps[0].grad_norm, steps[1].grad_norm,
              0x1p-7 * steps[1].grad_norm);
  EXPECT_EQ(steps[0].loss, steps[1].loss);  // the same forward

  const LoadedModel f32 = LoadFixture();
  options.bf16_gradients = true;
  auto learner =
      GrpoLearner::Create(f32.config, f32.weights, nullptr, nullptr, options);
  ASSERT_TRUE(learner.ok()) << learner.status();
  EXPECT_EQ((*learner)->gradient_bytes(), f32.weights.total_bytes());
}

// The reference scores in micro-batches of its own size: one completion at
// a time here, against the whole batch at once. Its logprobs do not depend
// on the batching (row-invariant kernels), so the KL and the trained
// weights are bit for bit the same; a completion longer than the
// reference's micro-batch is refused.
TEST(GrpoLearnerTest, ReferenceMicroBatchesScoreTheSameAsOneBatch) {
  const LoadedModel model = LoadFixture();
  GrpoOptions options;
  options.loss.beta = 0.5;
  options.lr.peak = 1e-2;
  std::vector<double> kls;
  std::vector<uint64_t> hashes;
  for (int64_t reference_tokens : {0, 7}) {  // each completion: 4 + 3
    options.reference_micro_batch_tokens = reference_tokens;
    auto learner = GrpoLearner::Create(model.config, model.weights, nullptr,
                                       nullptr, options);
    ASSERT_TRUE(learner.ok()) << learner.status();
    ASSERT_TRUE((*learner)->Step(TwoGroups(), 2).ok());
    StatusOr<GrpoStepMetrics> second = (*learner)->Step(TwoGroups(), 2);
    ASSERT_TRUE(second.ok()) << second.status();
    kls.push_back(second->kl);
    hashes.push_back(ContentHash((*learner)->weights()));
  }
  EXPECT_NE(kls[0], 0.0);
  EXPECT_EQ(kls[0], kls[1]);
  EXPECT_EQ(hashes[0], hashes[1]);

  options.reference_micro_batch_tokens = 6;
  auto short_reference = GrpoLearner::Create(model.config, model.weights,
                                             nullptr, nullptr, options);
  ASSERT_TRUE(short_reference.ok());
  const uint64_t before = ContentHash((*short_reference)->weights());
  EXPECT_EQ((*short_reference)->Step(TwoGroups(), 2).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ContentHash((*short_reference)->weights()), before);
  options.reference_micro_batch_tokens = -1;
  EXPECT_FALSE(GrpoLearner::Create(model.config, model.weights, nullptr,
                                   nullptr, options)
                   .ok());
}

}  // namespace
}  // namespace rlrt
