#include "models/ops/log_softmax.h"

#include <gtest/gtest.h>

#include <cmath>

#include "models/ops/op_test_util.h"

namespace rlrt {
namespace {

TEST(LogSoftmaxTest, MatchesTheDefinitionAtTemperatures) {
  auto logits = testing::RandomVector(1000, 1, 5.0f);
  for (float temperature : {1.0f, 0.7f, 1.3f}) {
    long double z = 0;
    for (float l : logits)
      z += std::exp(static_cast<long double>(l) / temperature);
    std::vector<float> out(logits.size());
    LogSoftmaxRow(logits.data(), logits.size(), out.data(), temperature);
    double total = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      const double expected = static_cast<double>(
          logits[i] / (long double)temperature - std::log(z));
      EXPECT_NEAR(out[i], expected, 1e-5);
      EXPECT_EQ(TokenLogprob(logits.data(), logits.size(), i, temperature),
                out[i]);
      total += std::exp(double(out[i]));
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

TEST(LogSoftmaxTest, EntropyByHand) {
  // Uniform over 4: log 4. Two logits 0 and log 3: p = 1/4, 3/4.
  const float uniform[] = {2.0f, 2.0f, 2.0f, 2.0f};
  EXPECT_NEAR(SoftmaxEntropy(uniform, 4), std::log(4.0), 1e-6);
  const float two[] = {0.0f, float(std::log(3.0))};
  EXPECT_NEAR(SoftmaxEntropy(two, 2),
              -(0.25 * std::log(0.25) + 0.75 * std::log(0.75)), 1e-6);
  // A near one-hot row: almost 0.
  const float sharp[] = {0.0f, 60.0f, 0.0f};
  EXPECT_LT(SoftmaxEntropy(sharp, 3), 1e-20);
}

TEST(LogSoftmaxTest, HugeLogitsStayFinite) {
  std::vector<float> logits = {1e30f, 1e30f, -1e30f};
  EXPECT_NEAR(TokenLogprob(logits.data(), 3, 0), -std::log(2.0), 1e-6);
  EXPECT_EQ(ArgMax(logits.data(), 3), 0);  // First of the ties.
}

TEST(LogSoftmaxTest, TemperedLogprobIsTheSamplersComputation) {
  // The sampler tempers a row as z = logits * (1/T) rounded to float, then
  // takes log-softmax of z; TemperLogits + TokenLogprob at temperature 1 is
  // that computation, and the result is within float rounding of the exact
  // log-softmax of logits / T.
  auto logits = testing::RandomVector(5000, 2, 4.0f);
  std::vector<float> z(logits.size());
  for (float temperature : {1.0f, 0.7f, 1.3f}) {
    TemperLogits(logits.data(), logits.size(), temperature, z.data());
    const float inv_t = 1.0f / temperature;
    for (size_t i = 0; i < z.size(); ++i) ASSERT_EQ(z[i], logits[i] * inv_t);
    long double sum = 0;
    for (float l : logits) sum += std::exp(l / (long double)temperature);
    for (int32_t token : {0, 17, 4999}) {
      const double exact =
          logits[token] / (long double)temperature - std::log(sum);
      EXPECT_NEAR(TokenLogprob(z.data(), z.size(), token), exact, 1e-5);
      if (temperature == 1.0f) {
        EXPECT_EQ(TokenLogprob(z.data(), z.size(), token),
                  TokenLogprob(logits.data(), logits.size(), token));
      }
    }
  }
}

TEST(LogSoftmaxTest, BackwardMatchesFiniteDifferences) {
  const int64_t n = 300;
  auto logits = testing::RandomVector(n, 3, 3.0f);
  for (float temperature : {1.0f, 0.7f}) {
    for (int32_t token : {0, 123}) {
      const float dlogprob = -1.75f;
      auto loss = [&](const std::vector<double>& l) {
        double m = -INFINITY, sum = 0;
        for (double v : l) m = std::max(m, v / temperature);
        for (double v : l) sum += std::exp(v / temperature - m);
        return dlogprob * (l[token] / temperature - m - std::log(sum));
      };
      const auto want =
          testing::NumericalGradient(loss, testing::ToDouble(logits));
      std::vector<float> d(n);
      TemperLogits(logits.data(), n, temperature, d.data());
      TokenLogprobBackward(d.data(), n, token, dlogprob, 1.0f / temperature,
                           d.data());  // In place.
      EXPECT_LT(testing::MaxRelativeError(d, want), 1e-6)
          << temperature << " " << token;
    }
  }
}

TEST(LogSoftmaxTest, BackwardOfACertainTokenIsZero) {
  // p(token) = 1 exactly: no gradient, and no cancellation noise either.
  std::vector<float> z = {0.0f, -200.0f, -300.0f};
  std::vector<float> d(3);
  TokenLogprobBackward(z.data(), 3, 0, 1.0f, 1.0f, d.data());
  EXPECT_EQ(d[0], 0.0f);
  EXPECT_EQ(d[1], 0.0f);
  EXPECT_EQ(d[2], 0.0f);
}

}  // namespace
}  // namespace rlrt
