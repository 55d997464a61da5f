#include "trainer_bridge/grpo_loss.h"

#include <gtest/gtest.h>

#include <cmath>

namespace rlrt {
namespace {

TEST(GroupAdvantagesTest, CentresAndScalesEachGroup) {
  const std::vector<double> rewards = {1, 0, 0, 1, 2, 2, 2, 2};
  const AdvantageEstimator grpo = AdvantageEstimator::kGrpo;
  auto a = GroupAdvantages(rewards, 4, grpo, true, 0.0);
  ASSERT_TRUE(a.ok());
  // Group 1: mean 0.5, population std 0.5.
  EXPECT_DOUBLE_EQ((*a)[0], 1.0);
  EXPECT_DOUBLE_EQ((*a)[1], -1.0);
  // Group 2: all equal, so no signal (and no division by zero with eps).
  auto b = GroupAdvantages(rewards, 4, grpo, true, 1e-4);
  for (int i = 4; i < 8; ++i) EXPECT_EQ((*b)[i], 0.0);
  auto unscaled = GroupAdvantages(rewards, 4, grpo, false);
  EXPECT_DOUBLE_EQ((*unscaled)[0], 0.5);
  EXPECT_FALSE(GroupAdvantages(rewards, 3, grpo, true).ok());
  EXPECT_FALSE(GroupAdvantages(rewards, 0, grpo, true).ok());
}

TEST(GroupAdvantagesTest, LeaveOneOutAndReinforcePlusPlusByHand) {
  const std::vector<double> rewards = {1, 0, 0, 1, 3, 0};
  // RLOO: each reward minus the mean of the others in its group.
  auto rloo = GroupAdvantages(rewards, 3, AdvantageEstimator::kRloo, true, 0.0);
  ASSERT_TRUE(rloo.ok());
  EXPECT_DOUBLE_EQ((*rloo)[0], 1.0 - 0.0);
  EXPECT_DOUBLE_EQ((*rloo)[1], 0.0 - 0.5);
  EXPECT_DOUBLE_EQ((*rloo)[4], 3.0 - 0.5);
  EXPECT_DOUBLE_EQ((*rloo)[5], 0.0 - 2.0);
  EXPECT_FALSE(
      GroupAdvantages({{1.0}}, 1, AdvantageEstimator::kRloo, true).ok());
  // REINFORCE++: the group mean subtracted (std not used), then the batch
  // whitened: group means 1/3 and 4/3.
  auto pp = GroupAdvantages(rewards, 3, AdvantageEstimator::kReinforcePlusPlus,
                            true, 0.0);
  ASSERT_TRUE(pp.ok());
  EXPECT_DOUBLE_EQ((*pp)[0], 2.0 / 3);
  EXPECT_DOUBLE_EQ((*pp)[4], 3.0 - 4.0 / 3);
  std::vector<double> w = {2, -1, -1, 2};  // Mean 0.5, std 1.5.
  WhitenAdvantages(w, 0.5, 1.5, 0.0);
  EXPECT_DOUBLE_EQ(w[0], 1.0);
  EXPECT_DOUBLE_EQ(w[1], -1.0);
}

TEST(KlTest, EstimatorsAndTheirGradientsByHand) {
  // logp = -1, ref = -1.5: ref - logp = -0.5.
  EXPECT_DOUBLE_EQ(KlEstimate(KlEstimator::kK1, -1, -1.5), 0.5);
  EXPECT_DOUBLE_EQ(KlEstimate(KlEstimator::kK2, -1, -1.5), 0.125);
  EXPECT_DOUBLE_EQ(KlEstimate(KlEstimator::kK3, -1, -1.5),
                   std::exp(-0.5) + 0.5 - 1);
  EXPECT_DOUBLE_EQ(KlEstimateGradient(KlEstimator::kK1, -1, -1.5), 1.0);
  EXPECT_DOUBLE_EQ(KlEstimateGradient(KlEstimator::kK2, -1, -1.5), 0.5);
  EXPECT_DOUBLE_EQ(KlEstimateGradient(KlEstimator::kK3, -1, -1.5),
                   1 - std::exp(-0.5));
  // In the reward: the sum over the completion's tokens, times beta.
  const std::vector<double> rewards = {1.0, 2.0};
  const std::vector<std::vector<float>> behaviour = {{-1.0f, -2.0f}, {-1.0f}};
  const std::vector<std::vector<float>> ref = {{-1.5f, -2.0f}, {-0.5f}};
  const std::vector<double> penalized =
      KlPenalizedRewards(rewards, behaviour, ref, 0.1, KlEstimator::kK1);
  EXPECT_DOUBLE_EQ(penalized[0], 1.0 - 0.1 * (0.5 + 0.0));
  EXPECT_DOUBLE_EQ(penalized[1], 2.0 - 0.1 * (-0.5));
}

// The loss against a direct evaluation, and the gradient against central
// finite differences of that loss, for every loss type, both importance
// sampling levels, every KL estimator, and the dual clip.
TEST(GrpoLossTest, GradientMatchesFiniteDifferences) {
  std::vector<std::vector<float>> logp = {{-1.0f, -0.5f, -2.0f},
                                          {-0.3f, -1.7f}};
  const std::vector<std::vector<float>> old = {{-1.1f, -0.2f, -2.0f},
                                               {-0.9f, -1.6f}};
  const std::vector<std::vector<float>> ref = {{-1.2f, -0.6f, -1.5f},
                                               {-0.4f, -1.0f}};
  const double adv[] = {1.3, -0.7};
  int variants = 0;
  for (LossType type :
       {LossType::kGrpo, LossType::kBnpo, LossType::kDrGrpo, LossType::kDapo})
    for (ImportanceSamplingLevel level :
         {ImportanceSamplingLevel::kToken, ImportanceSamplingLevel::kSequence})
      for (KlEstimator kl :
           {KlEstimator::kK1, KlEstimator::kK2, KlEstimator::kK3})
        for (double dual : {0.0, 1.5}) {
          GrpoLossOptions o;
          o.loss_type = type;
          o.max_completion_length = 4;
          o.beta = 0.05;
          o.epsilon = 0.2;
          o.epsilon_high = 0.28;
          o.importance_sampling_level = level;
          o.kl_estimator = kl;
          o.dual_clip_c = dual;
          ++variants;
          auto eval = [&](std::vector<std::vector<float>>& lp,
                          std::vector<std::vector<float>>* grads) {
            std::vector<CompletionTerms> terms;
            std::vector<std::vector<float>> local = {{0, 0, 0}, {0, 0}};
            auto& g = grads ? *grads : local;
            std::vector<std::span<float>> spans;
            for (int i = 0; i < 2; ++i) {
              terms.push_back({lp[i], old[i], ref[i], adv[i], false});
              spans.push_back(g[i]);
            }
            return GrpoLoss(terms, o, spans)->loss;
          };
          std::vector<std::vector<float>> grads = {{0, 0, 0}, {0, 0}};
          eval(logp, &grads);
          for (int i = 0; i < 2; ++i) {
            for (size_t t = 0; t < logp[i].size(); ++t) {
              const float h = 1e-3f;
              const float keep = logp[i][t];
              logp[i][t] = keep + h;
              const double up = eval(logp, nullptr);
              logp[i][t] = keep - h;
              const double down = eval(logp, nullptr);
              logp[i][t] = keep;
              EXPECT_NEAR(grads[i][t], (up - down) / (2 * h), 2e-4)
                  << int(type) << " " << int(level) << " " << int(kl) << " "
                  << dual << " " << i << " " << t;
            }
          }
        }
  EXPECT_EQ(variants, 48);
}

TEST(GrpoLossTest, SequenceLevelRatioByHand) {
  // GSPO: one ratio exp(mean(logp - old)) = exp(0.1) for both tokens,
  // inside the clip; each token's gradient is the completion's, spread over
  // its tokens: (sum_t w * -A * r) / n with w = 1/2 (grpo, one completion).
  const std::vector<float> lp = {-1.0f, -2.0f}, old = {-1.15f, -2.05f};
  std::vector<float> g(2);
  std::vector<CompletionTerms> terms = {{lp, old, {}, 1.0, false}};
  std::vector<std::span<float>> spans = {g};
  GrpoLossOptions o;
  o.importance_sampling_level = ImportanceSamplingLevel::kSequence;
  auto s = GrpoLoss(terms, o, spans);
  ASSERT_TRUE(s.ok());
  const double r = std::exp(0.1);
  EXPECT_NEAR(s->loss, -r, 1e-6);
  EXPECT_NEAR(g[0], -r / 2, 1e-6);
  EXPECT_NEAR(g[1], -r / 2, 1e-6);
  // Token level: each token its own ratio, e^0.15 and e^0.05.
  o.importance_sampling_level = ImportanceSamplingLevel::kToken;
  ASSERT_TRUE(GrpoLoss(terms, o, spans).ok());
  EXPECT_NEAR(g[0], -std::exp(0.15) / 2, 1e-6);
  EXPECT_NEAR(g[1], -std::exp(0.05) / 2, 1e-6);
}

TEST(GrpoLossTest, DualClipBoundsTheLossOfANegativeAdvantage) {
  // r = e^1 with A = -1: PPO's term is -e (no clip on that side); the dual
  // clip with c = 2 bounds it at -2, and the gradient stops.
  const std::vector<float> lp = {-0.5f}, old = {-1.5f};
  std::vector<float> g(1);
  std::vector<CompletionTerms> terms = {{lp, old, {}, -1.0, false}};
  std::vector<std::span<float>> spans = {g};
  GrpoLossOptions o;
  auto plain = GrpoLoss(terms, o, spans);
  EXPECT_NEAR(plain->loss, std::exp(1.0), 1e-6);
  EXPECT_NEAR(g[0], std::exp(1.0), 1e-5);
  o.dual_clip_c = 2.0;
  auto dual = GrpoLoss(terms, o, spans);
  EXPECT_NEAR(dual->loss, 2.0, 1e-12);
  EXPECT_EQ(g[0], 0.0f);
  EXPECT_EQ(dual->clip_fraction, 1.0);
  EXPECT_EQ(dual->dual_clip_fraction, 1.0);
  o.dual_clip_c = 1.0;  // Must be > 1.
  EXPECT_FALSE(GrpoLoss(terms, o, spans).ok());
}

TEST(GrpoLossTest, TruncatedImportanceWeightsByHand) {
  // Trainer logprobs at the step's start vs the sampler's: weights e^0.5
  // (capped at 1.2) and e^-0.1.
  const std::vector<float> trainer = {-1.0f, -2.0f}, sampler = {-1.5f, -1.9f};
  int64_t capped = 0;
  const std::vector<float> w =
      TruncatedImportanceWeights(trainer, sampler, 1.2, &capped);
  EXPECT_EQ(capped, 1);
  EXPECT_FLOAT_EQ(w[0], 1.2f);
  EXPECT_NEAR(w[1], std::exp(-0.1), 1e-6);
  // On the trainer's own logprobs the ratio is 1: each token's term is
  // -w * A, its gradient -w * A * weight (1/2 per token here).
  std::vector<float> g(2);
  std::vector<CompletionTerms> terms = {{trainer, trainer, {}, 1.0, false, w}};
  std::vector<std::span<float>> spans = {g};
  auto s = GrpoLoss(terms, GrpoLossOptions{}, spans);
  ASSERT_TRUE(s.ok());
  EXPECT_NEAR(s->loss, -(1.2 + std::exp(-0.1)) / 2, 1e-6);
  EXPECT_NEAR(g[0], -0.6, 1e-6);
  EXPECT_NEAR(g[1], -std::exp(-0.1) / 2, 1e-6);
}

TEST(GrpoLossTest, LossTypesWeighTokensByHand) {
  // Completions of 1 and 3 tokens, on-policy, advantages 1 and 1: each
  // token's loss is -1.
  const std::vector<float> one = {-1.0f}, three = {-1.0f, -1.0f, -1.0f};
  std::vector<float> g1(1), g3(3);
  std::vector<CompletionTerms> terms = {{one, one, {}, 1.0, false},
                                        {three, three, {}, 1.0, false}};
  std::vector<std::span<float>> spans = {g1, g3};
  GrpoLossOptions o;
  auto weights = [&](LossType type) {
    o.loss_type = type;
    o.max_completion_length = 8;
    EXPECT_TRUE(GrpoLoss(terms, o, spans).ok());
    return std::pair<double, double>(-g1[0], -g3[0]);
  };
  EXPECT_EQ(weights(LossType::kGrpo),
            (std::pair<double, double>(0.5f, float(1.0 / 6))));
  EXPECT_EQ(weights(LossType::kDapo), (std::pair<double, double>(0.25, 0.25)));
  EXPECT_EQ(weights(LossType::kBnpo), (std::pair<double, double>(0.25, 0.25)));
  EXPECT_EQ(weights(LossType::kDrGrpo),
            (std::pair<double, double>(1.0 / 16, 1.0 / 16)));
}

TEST(GrpoLossTest, OnPolicyLossIsMinusTheMeanAdvantage) {
  const std::vector<float> lp = {-1.0f, -2.0f};
  GrpoLossOptions o;
  std::vector<float> g1(2), g2(2);
  std::vector<CompletionTerms> terms = {{lp, lp, {}, 1.5, false},
                                        {lp, lp, {}, -0.5, false}};
  std::vector<std::span<float>> spans = {g1, g2};
  auto s = GrpoLoss(terms, o, spans);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->loss, -(1.5 - 0.5) / 2);
  EXPECT_EQ(s->clip_fraction, 0.0);
  EXPECT_DOUBLE_EQ(s->ratio_mean, 1.0);
  EXPECT_FLOAT_EQ(g1[0], -1.5f / 4);  // -A * r * weight (1 / (2 tokens * 2)).
}

TEST(GrpoLossTest, ClippingStopsTheGradientOutsideTheTrustRegion) {
  // Ratio e^0.5 ~ 1.65 > 1.2 with a positive advantage: clipped, no gradient.
  const std::vector<float> lp = {-0.5f}, old = {-1.0f};
  std::vector<float> g(1);
  std::vector<CompletionTerms> terms = {{lp, old, {}, 1.0, false}};
  std::vector<std::span<float>> spans = {g};
  auto s = GrpoLoss(terms, GrpoLossOptions{}, spans);
  EXPECT_EQ(g[0], 0.0f);
  EXPECT_EQ(s->clip_fraction, 1.0);
  EXPECT_NEAR(s->loss, -1.2, 1e-12);
  // A negative advantage is not clipped on that side: the gradient stays.
  terms[0].advantage = -1.0;
  s = GrpoLoss(terms, GrpoLossOptions{}, spans);
  EXPECT_NEAR(g[0], std::exp(0.5), 1e-6);
  EXPECT_EQ(s->clip_fraction, 0.0);
}

TEST(GrpoLossTest, TruncatedCompletionsCanBeDropped) {
  const std::vector<float> lp = {-1.0f};
  std::vector<float> g1(1), g2(1);
  std::vector<CompletionTerms> terms = {{lp, lp, {}, 1.0, true},
                                        {lp, lp, {}, 2.0, false}};
  std::vector<std::span<float>> spans = {g1, g2};
  GrpoLossOptions o;
  o.drop_truncated = true;
  auto s = GrpoLoss(terms, o, spans);
  EXPECT_EQ(g1[0], 0.0f);
  EXPECT_DOUBLE_EQ(s->loss, -2.0);
  EXPECT_EQ(s->tokens, 1);
}

TEST(GrpoLossTest, BadInputIsRefused) {
  const std::vector<float> a = {-1.0f, -2.0f}, b = {-1.0f};
  std::vector<float> g(2);
  std::vector<std::span<float>> spans = {g};
  std::vector<CompletionTerms> terms = {{a, b, {}, 1.0, false}};
  EXPECT_FALSE(GrpoLoss(terms, GrpoLossOptions{}, spans).ok());
  terms[0].old_logp = a;
  GrpoLossOptions o;
  o.beta = 0.1;  // ...but no reference logprobs.
  EXPECT_FALSE(GrpoLoss(terms, o, spans).ok());
  o.beta = -1;
  EXPECT_FALSE(GrpoLoss(terms, o, spans).ok());
  EXPECT_FALSE(GrpoLoss(terms, GrpoLossOptions{}, {}).ok());
}

TEST(ParseTest, FlagNamesMapToTheirVariants) {
  EXPECT_EQ(ParseLossType("grpo").value(), LossType::kGrpo);
  EXPECT_EQ(ParseLossType("bnpo").value(), LossType::kBnpo);
  EXPECT_EQ(ParseLossType("dr_grpo").value(), LossType::kDrGrpo);
  EXPECT_EQ(ParseLossType("dapo").value(), LossType::kDapo);
  EXPECT_EQ(ParseImportanceSamplingLevel("sequence").value(),
            ImportanceSamplingLevel::kSequence);
  EXPECT_EQ(ParseKlEstimator("k2").value(), KlEstimator::kK2);
  EXPECT_EQ(ParseAdvantageEstimator("reinforce_pp").value(),
            AdvantageEstimator::kReinforcePlusPlus);
  for (const char* bad : {"", "GRPO", "token_mean", "grpo "}) {
    StatusOr<LossType> parsed = ParseLossType(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("'" + std::string(bad) + "'"),
              std::string::npos);
  }
  EXPECT_FALSE(ParseImportanceSamplingLevel("seq").ok());
  EXPECT_FALSE(ParseKlEstimator("k4").ok());
  EXPECT_FALSE(ParseAdvantageEstimator("ppo").ok());
}

}  // namespace
}  // namespace rlrt
