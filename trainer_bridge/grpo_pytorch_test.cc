// The GRPO objective's gradient against PyTorch autograd, in every variant
// the learner offers: for the tiny Qwen3 (tied and untied), Qwen2 and Llama
// fixtures, the loss of tests/reference/gen_grpo_fixtures.py (clipped
// ratios against behaviour logprobs, per token or per sequence (GSPO), an
// asymmetric clip and the dual clip, the k1/k2/k3 KL to reference logprobs
// in the loss or in the reward, the grpo/bnpo/dr_grpo/dapo loss types and
// the grpo/rloo/reinforce_pp advantages, float64) differentiated through
// the whole model. Ours: the advantages, the training forward, GrpoLoss for
// dLoss/dlogp, the backward. Every leaf must agree to 1e-4 of its largest
// gradient.
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
  const int64_t group_size = fixture["group_size"].get<int64_t>();
  const double beta = fixture["beta"].get<double>();

  auto mesh = testing::MakeMesh(2);
  auto trainable =
      testing::MakeTrainable(model.config, model.leaves, mesh.get());
  ASSERT_TRUE(trainable);
  const float temperature = fixture["temperature"].get<float>();
  std::vector<float> logp(batch.num_targets()), entropies(logp.size());
  ASSERT_TRUE(
      trainable->Forward(batch.sequences, temperature, logp, {}, entropies)
          .ok());
  // The policy's token entropy, the metric the learner reports.
  double entropy = 0;
  for (float h : entropies) entropy += h;
  EXPECT_NEAR(entropy / entropies.size(), fixture["entropy_mean"].get<double>(),
              1e-5);

  int dual_clipped_total = 0;
  for (const json& c : fixture["cases"]) {
    const std::string case_name = c["name"];
    const json& o = c["options"];
    GrpoLossOptions options;
    options.epsilon = fixture["epsilon"].get<double>();
    options.epsilon_high = fixture["epsilon_high"].get<double>();
    options.beta = beta;
    options.loss_type = *ParseLossType(o["loss_type"].get<std::string>());
    options.max_completion_length =
        fixture["max_completion_length"].get<double>();
    options.importance_sampling_level = *ParseImportanceSamplingLevel(
        o["importance_sampling_level"].get<std::string>());
    options.dual_clip_c = o["dual_clip_c"].get<double>();
    options.kl_estimator =
        *ParseKlEstimator(o["kl_estimator"].get<std::string>());
    const AdvantageEstimator estimator =
        *ParseAdvantageEstimator(o["advantage_estimator"].get<std::string>());
    const bool kl_in_reward = o["kl_in_reward"].get<bool>();
    const double tis_cap = o["tis_cap"].get<double>();

    // The advantages, as the learner computes them (in one process).
    std::vector<double> case_rewards = rewards;
    if (kl_in_reward) {
      case_rewards = KlPenalizedRewards(rewards, old_logp, ref_logp, beta,
                                        options.kl_estimator);
      options.beta = 0;
    }
    auto advantages =
        GroupAdvantages(case_rewards, group_size, estimator, true);
    ASSERT_TRUE(advantages.ok());
    if (estimator == AdvantageEstimator::kReinforcePlusPlus) {
      double mean = 0, square = 0;
      for (double a : *advantages) {
        mean += a;
        square += a * a;
      }
      mean /= advantages->size();
      WhitenAdvantages(*advantages, mean,
                       std::sqrt(square / advantages->size() - mean * mean));
    }
    const auto want_advantages = c["advantages"].get<std::vector<double>>();
    // The fixture's logprobs reach us as floats: the KL penalty, divided
    // by a group's std, differs by a few 1e-7.
    for (size_t i = 0; i < rewards.size(); ++i) {
      EXPECT_NEAR((*advantages)[i], want_advantages[i], 1e-6)
          << case_name << " " << i;
    }

    std::vector<CompletionTerms> terms;
    std::vector<float> dlogp(logp.size());
    std::vector<std::span<float>> grads;
    std::vector<std::vector<float>> is_weights(old_logp.size());
    int64_t tis_capped = 0;
    size_t at = 0;
    for (size_t i = 0; i < old_logp.size(); ++i) {
      const size_t n = old_logp[i].size();
      const std::span<const float> policy =
          std::span<const float>(logp).subspan(at, n);
      // Truncated importance sampling: the ratio against our own logprobs
      // (the trainer's at the step's start), weighted against the sampler's.
      if (tis_cap > 0) {
        is_weights[i] = TruncatedImportanceWeights(policy, old_logp[i], tis_cap,
                                                   &tis_capped);
      }
      terms.push_back(
          {policy, tis_cap > 0 ? policy : std::span<const float>(old_logp[i]),
           ref_logp[i], (*advantages)[i], false, is_weights[i]});
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
    // (GSPO's sequence ratios stay inside the clip; so do TIS's, 1 on the
    // trainer's own logprobs.)
    if (options.importance_sampling_level == ImportanceSamplingLevel::kToken &&
        tis_cap == 0) {
      EXPECT_GT(clipped, 0) << "the fixture should exercise the clip";
    }
    const int64_t dual =
        std::llround(stats->dual_clip_fraction * stats->tokens);
    EXPECT_EQ(dual, c["dual_clipped_tokens"].get<int64_t>()) << case_name;
    dual_clipped_total += dual;
    EXPECT_EQ(tis_capped, c["tis_capped_tokens"].get<int64_t>()) << case_name;
    if (tis_cap > 0) {
      EXPECT_GT(tis_capped, 0) << "the fixture should reach the cap";
    }

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
  if (name == "qwen2" || name == "llama") {
    EXPECT_GT(dual_clipped_total, 0)
        << "the fixture should reach the dual clip";
  }
}

INSTANTIATE_TEST_SUITE_P(TinyModels, GrpoPyTorchTest,
                         ::testing::Values("qwen3_tied", "qwen3_untied",
                                           "qwen2", "llama"));

}  // namespace
}  // namespace rlrt
