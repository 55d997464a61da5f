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

TEST(SwigluTest, BackwardMatchesFiniteDifferences) {
  const int64_t n = 9000;  // Past one 4096-element block.
  auto gate = testing::RandomVector(n, 3, 4.0f);
  auto up = testing::RandomVector(n, 4);
  auto d_out = testing::RandomVector(n, 5);
  // Elementwise, so each derivative is a scalar difference quotient.
  auto out = [](double g, double u) { return g / (1.0 + std::exp(-g)) * u; };
  const double h = 1e-6;
  std::vector<double> want_gate(n), want_up(n);
  for (int64_t i = 0; i < n; ++i) {
    want_gate[i] = d_out[i] *
                   (out(gate[i] + h, up[i]) - out(gate[i] - h, up[i])) /
                   (2 * h);
    want_up[i] = d_out[i] *
                 (out(gate[i], up[i] + h) - out(gate[i], up[i] - h)) / (2 * h);
  }
  testing::ExpectSameBitsForAnyWorkerCount([&](Mesh* mesh) {
    std::vector<float> d_gate(n), d_up(n);
    EXPECT_TRUE(SwigluBackward(gate.data(), up.data(), d_out.data(),
                               d_gate.data(), d_up.data(), n, mesh)
                    .ok());
    EXPECT_LT(testing::MaxRelativeError(d_gate, want_gate), 1e-6);
    EXPECT_LT(testing::MaxRelativeError(d_up, want_up), 1e-6);
    d_gate.insert(d_gate.end(), d_up.begin(), d_up.end());
    return d_gate;
  });
}

TEST(SwigluTest, BackwardInPlaceAndAtExtremeGates) {
  std::vector<float> gate = {-100.0f, 100.0f, 0.0f};
  std::vector<float> up = {1.0f, 2.0f, 3.0f};
  std::vector<float> d_out = {1.0f, 1.0f, 1.0f};
  // Gradients overwrite gate and up in place, as the trainer does.
  ASSERT_TRUE(SwigluBackward(gate.data(), up.data(), d_out.data(), gate.data(),
                             up.data(), 3, nullptr)
                  .ok());
  EXPECT_EQ(gate[0], 0.0f);  // silu' vanishes far left, without NaN.
  EXPECT_EQ(gate[1], 2.0f);  // silu' -> 1 far right, times up.
  EXPECT_EQ(gate[2], 1.5f);  // silu'(0) = 1/2, times up.
  EXPECT_EQ(up[0], -0.0f);   // silu(-100) ~ -4e-42 rounds to -0.
  EXPECT_EQ(up[1], 100.0f);
  EXPECT_EQ(up[2], 0.0f);
}

}  // namespace
}  // namespace rlrt
