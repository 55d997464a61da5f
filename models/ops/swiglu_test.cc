#include "models/ops/swiglu.h"

#include <gtest/gtest.h>

#include <cmath>

#include "models/ops/op_test_util.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

TEST(SwigluTest, MatchesTheDefinition) {
  const int64_t n = 10000;
  auto gate = testing::RandomVector(n, 1, 4.0f);
  auto up = testing::RandomVector(n, 2);
  std::vector<double> expected(n);
  for (int64_t i = 0; i < n; ++i) {
    expected[i] = gate[i] / (1.0 + std::exp(-double(gate[i]))) * up[i];
  }
  std::vector<float> out(n);
  auto mesh = testing::MakeMesh(3);
  ASSERT_TRUE(
      SwigluForward(gate.data(), up.data(), out.data(), n, mesh.get()).ok());
  EXPECT_LT(testing::MaxAbsDiff(out.data(), expected.data(), n), 1e-5);
  // Large negative gates must not produce NaN.
  float g = -100.0f, u = 1.0f, o = 0;
  ASSERT_TRUE(SwigluForward(&g, &u, &o, 1, nullptr).ok());
  EXPECT_EQ(o, -0.0f);
}

}  // namespace
}  // namespace rlrt
