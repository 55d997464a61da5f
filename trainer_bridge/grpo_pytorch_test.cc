// The GRPO objective's gradient against PyTorch autograd: for the tiny
// Qwen3 (tied and untied), Qwen2 and Llama fixtures, the loss of
// tests/reference/gen_grpo_fixtures.py (clipped ratios against behaviour
// logprobs, asymmetric clip, k3 KL to reference logprobs, two aggregations,
// float64) differentiated through the whole model. Ours: the training
// forward, GrpoLoss for dLoss/dlogp, the backward. Every leaf must agree to
// 1e-4 of its largest gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "models/io/safetensors.h"
#include "models/test_util.h"
#include "models/train/train_test_util.h"
#include "trainer_bridge/grpo_loss.h"

namespace rlrt {
namespace {

using nlohmann::json;

double RelativeError(std::span<const float> ours,
                     const SafetensorsTensor& ref) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    float want;
    std::memcpy(&want, ref.data.data() + i * sizeof(float), sizeof(float));
    diff = std::max(diff, std::fabs(double(ours[i]) - want));
    scale = std::max(scale, std::fabs(double(want)));
  }
  return scale > 0 ? diff / scale : diff;
}

class GrpoPyTorchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GrpoPyTorchTest, GrpoLossGradientMatchesAutograd) {
  const std::string name = GetParam();
  LoadedCheckpoint model = testing::LoadFixture(name);
  const json fixture =
      testing::ReadJsonFile(testing::FixtureDir(name) + "/grpo.json");
  auto reference =
      SafetensorsFile::Open(testing::FixtureDir(name) + "/grpo.safetensors");
  ASSERT_TRUE(reference.ok()) << reference.status();

  // The batch: prompt + completion, scored on the completion's tokens.
  testing::OwnedBatch batch;
  std::vector<std::vector<float>> old_logp, ref_logp;
  std::vector<double> rewards;
  for (const json& c : fixture["completions"]) {
    std::vector<int32_t> ids = c["prompt"].get<std::vector<int32_t>>();
    const auto tokens = c["tokens"].get<std::vector<int32_t>>();
    std::vector<int32_t> targets;
    for (size_t t = ids.size() - 1; t + 1 < ids.size() + tokens.size(); ++t)
      targets.push_back(static_cast<int32_t>(t));
    ids.insert(ids.end(), tokens.begin(), tokens.end());
    batch.Add(ids, targets);
    old_logp.push_back(c["old_logprobs"].get<std::vector<float>>());
    ref_logp.push_back(c["ref_logprobs"].get<std::vector<float>>());
    rewards.push_back(c["reward"].get<double>());
  }
  auto advantages =
      GroupAdvantages(rewards, fixture["group_size"].get<int64_t>(), true);
  ASSERT_TRUE(advantages.ok());
  const auto want_advantages = fixture["advantages"].get<std::vector<double>>();
  for (size_t i = 0; i < rewards.size(); ++i)
    EXPECT_NEAR((*advantages)[i], want_advantages[i], 1e-8) << i;

  auto mesh = testing::MakeMesh(2);
  auto trainable =
      testing::MakeTrainable(model.config, model.leaves, mesh.get());
  ASSERT_TRUE(trainable);
  const float temperature = fixture["temperature"].get<float>();
  std::vector<float> logp(batch.num_targets());
  ASSERT_TRUE(trainable->Forward(batch.sequences, temperature, logp).ok());

  for (const json& c : fixture["cases"]) {
    const std::string case_name = c["name"];
    GrpoLossOptions options;
    options.epsilon = fixture["epsilon"].get<double>();
    options.epsilon_high = fixture["epsilon_high"].get<double>();
    options.beta = fixture["beta"].get<double>();
    options.aggregation = *ParseLossAggregation(case_name);
    std::vector<CompletionTerms> terms;
    std::vector<float> dlogp(logp.size());
    std::vector<std::span<float>> grads;
    size_t at = 0;
    for (size_t i = 0; i < old_logp.size(); ++i) {
      const size_t n = old_logp[i].size();
      terms.push_back({std::span<const float>(logp).subspan(at, n), old_logp[i],
                       ref_logp[i], (*advantages)[i], false});
      grads.push_back(std::span<float>(dlogp).subspan(at, n));
      at += n;
    }
    auto stats = GrpoLoss(terms, options, grads);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_NEAR(stats->loss, c["loss"].get<double>(),
                1e-5 * std::max(1.0, std::fabs(c["loss"].get<double>())))
        << case_name;
    const int64_t clipped = std::llround(stats->clip_fraction * stats->tokens);
    EXPECT_EQ(clipped, c["clipped_tokens"].get<int64_t>()) << case_name;
    EXPECT_GT(clipped, 0) << "the fixture should exercise the clip";

    ParamLeaves leaf_grads = testing::ZeroGradients(model.config);
    ASSERT_TRUE(trainable->Backward(dlogp, leaf_grads).ok());
    double worst = 0;
    for (size_t leaf = 0; leaf < leaf_grads.size(); ++leaf) {
      const std::string& leaf_name = leaf_grads.spec(leaf).name;
      const SafetensorsTensor* ref =
          reference->Find(case_name + "/" + leaf_name);
      ASSERT_NE(ref, nullptr) << case_name << "/" << leaf_name;
      ASSERT_EQ(ref->NumElements(), leaf_grads.spec(leaf).NumElements());
      const double error = RelativeError(leaf_grads.F32(leaf), *ref);
      worst = std::max(worst, error);
      EXPECT_LE(error, 1e-4) << name << " " << case_name << " " << leaf_name;
    }
    std::printf(
        "%s %s: loss %.6f, %lld clipped tokens, worst relative "
        "gradient error %.2e\n",
        name.c_str(), case_name.c_str(), stats->loss,
        static_cast<long long>(clipped), worst);
  }
}

INSTANTIATE_TEST_SUITE_P(TinyModels, GrpoPyTorchTest,
                         ::testing::Values("qwen3_tied", "qwen3_untied",
                                           "qwen2", "llama"));

}  // namespace
}  // namespace rlrt
