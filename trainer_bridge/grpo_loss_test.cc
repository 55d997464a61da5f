#include "trainer_bridge/grpo_loss.h"

#include <gtest/gtest.h>

#include <cmath>

namespace rlrt {
namespace {

TEST(GroupAdvantagesTest, CentresAndScalesEachGroup) {
  const std::vector<double> rewards = {1, 0, 0, 1, 2, 2, 2, 2};
  auto a = GroupAdvantages(rewards, 4, true, 0.0);
  ASSERT_TRUE(a.ok());
  // Group 1: mean 0.5, population std 0.5.
  EXPECT_DOUBLE_EQ((*a)[0], 1.0);
  EXPECT_DOUBLE_EQ((*a)[1], -1.0);
  // Group 2: all equal, so no signal (and no division by zero with eps).
  auto b = GroupAdvantages(rewards, 4, true, 1e-4);
  for (int i = 4; i < 8; ++i) EXPECT_EQ((*b)[i], 0.0);
  auto unscaled = GroupAdvantages(rewards, 4, false);
  EXPECT_DOUBLE_EQ((*unscaled)[0], 0.5);
  EXPECT_FALSE(GroupAdvantages(rewards, 3, true).ok());
  EXPECT_FALSE(GroupAdvantages(rewards, 0, true).ok());
}

// The loss against a direct evaluation, and the gradient against central
// finite differences of that loss, for every aggregation and with KL.
TEST(GrpoLossTest, GradientMatchesFiniteDifferences) {
  std::vector<std::vector<float>> logp = {{-1.0f, -0.5f, -2.0f},
                                          {-0.3f, -1.7f}};
  const std::vector<std::vector<float>> old = {{-1.1f, -0.2f, -2.0f},
                                               {-0.9f, -1.6f}};
  const std::vector<std::vector<float>> ref = {{-1.2f, -0.6f, -1.5f},
                                               {-0.4f, -1.0f}};
  const double adv[] = {1.3, -0.7};
  for (LossAggregation agg :
       {LossAggregation::kSequenceMean, LossAggregation::kTokenMean,
        LossAggregation::kConstant}) {
    GrpoLossOptions o;
    o.aggregation = agg;
    o.constant_normalizer = 4;
    o.beta = 0.05;
    o.epsilon = 0.2;
    o.epsilon_high = 0.28;
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
            << int(agg) << " " << i << " " << t;
      }
    }
  }
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

TEST(ParseLossAggregationTest, NamesMapToTheirAggregation) {
  EXPECT_EQ(ParseLossAggregation("sequence_mean").value(),
            LossAggregation::kSequenceMean);
  EXPECT_EQ(ParseLossAggregation("token_mean").value(),
            LossAggregation::kTokenMean);
  EXPECT_EQ(ParseLossAggregation("constant").value(),
            LossAggregation::kConstant);
  for (const char* bad : {"", "Token_Mean", "mean", "constant "}) {
    StatusOr<LossAggregation> parsed = ParseLossAggregation(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("'" + std::string(bad) + "'"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace rlrt
