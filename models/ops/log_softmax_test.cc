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

TEST(LogSoftmaxTest, HugeLogitsStayFinite) {
  std::vector<float> logits = {1e30f, 1e30f, -1e30f};
  EXPECT_NEAR(TokenLogprob(logits.data(), 3, 0), -std::log(2.0), 1e-6);
  EXPECT_EQ(ArgMax(logits.data(), 3), 0);  // First of the ties.
}

}  // namespace
}  // namespace rlrt
