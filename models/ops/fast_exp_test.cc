#include "models/ops/fast_exp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace rlrt {
namespace {

TEST(FastExpTest, MatchesLibraryExpToAFewUlp) {
  double worst = 0;
  for (float x = -87.0f; x <= 0.0f; x += 0.00137f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(ExpNonPositive(x) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);  // About 2.5 float ulp.
  EXPECT_EQ(ExpNonPositive(0.0f), 1.0f);
  EXPECT_EQ(ExpNonPositive(5.0f), 1.0f);  // Clamped.
  EXPECT_EQ(ExpNonPositive(-100.0f), 0.0f);
  EXPECT_EQ(ExpNonPositive(-INFINITY), 0.0f);
}

// A NaN logit (weights that overflowed) must give NaN, which the callers'
// finiteness checks then report, not undefined behaviour (UBSan checks the
// conversion in the sanitizer build).
TEST(FastExpTest, NanGivesNan) {
  EXPECT_TRUE(std::isnan(ExpNonPositive(std::nanf(""))));
  std::vector<float> v = {0.0f, std::nanf(""), -1.0f};
  EXPECT_TRUE(std::isnan(ExpShiftedSum(v.data(), 3, 1.0f, 0.0f)));
}

TEST(FastExpTest, ShiftedSumMatchesADoubleReference) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0, 4);
  std::vector<float> v(151669);
  for (float& x : v) x = d(rng);
  float max = -INFINITY;
  for (float x : v) max = std::max(max, x * 0.7f);
  long double want = 0;
  for (float x : v) want += std::exp(static_cast<long double>(x * 0.7f - max));
  std::vector<float> terms(v.size());
  const double got = ExpShiftedSum(v.data(), v.size(), 0.7f, max, terms.data());
  EXPECT_NEAR(got / static_cast<double>(want), 1.0, 1e-6);
  EXPECT_NEAR(terms[123], std::exp(double(v[123] * 0.7f - max)), 1e-6);
}

}  // namespace
}  // namespace rlrt
