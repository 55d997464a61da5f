#include "models/ops/rope.h"

#include <gtest/gtest.h>

#include <cmath>

#include "models/ops/op_test_util.h"

namespace rlrt {
namespace {

TEST(RopeTest, RotatesHalvesAtTheRightAngles) {
  const int64_t d = 8, heads = 3;
  const std::vector<int32_t> positions = {0, 1, 5, 40000};
  const int64_t rows = positions.size();
  const double theta = 1e6;
  std::vector<float> cos_t(rows * d / 2), sin_t(rows * d / 2);
  RopeTables(positions.data(), rows, RopeInverseFrequencies(d, theta),
             cos_t.data(), sin_t.data());
  auto x = testing::RandomVector(rows * heads * d, 3);
  auto original = x;
  ASSERT_TRUE(
      RopeForward(x.data(), rows, heads, d, cos_t.data(), sin_t.data(), nullptr)
          .ok());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* in = original.data() + (r * heads + h) * d;
      const float* out = x.data() + (r * heads + h) * d;
      for (int64_t i = 0; i < d / 2; ++i) {
        const double angle = positions[r] * std::pow(theta, -2.0 * i / d);
        const double c = std::cos(angle), s = std::sin(angle);
        EXPECT_NEAR(out[i], in[i] * c - in[i + d / 2] * s, 1e-5);
        EXPECT_NEAR(out[i + d / 2], in[i + d / 2] * c + in[i] * s, 1e-5);
      }
    }
  }
  // Position 0 is the identity.
  for (int64_t i = 0; i < heads * d; ++i) EXPECT_EQ(x[i], original[i]);
}

TEST(RopeTest, DotProductsDependOnlyOnRelativePosition) {
  // The property attention relies on: <R(p)q, R(p+k)v> is the same for all p.
  const int64_t d = 16;
  auto q = testing::RandomVector(d, 1), k = testing::RandomVector(d, 2);
  auto dot_at = [&](int32_t p) {
    std::vector<int32_t> pos = {p, p + 7};
    std::vector<float> c(2 * d / 2), s(2 * d / 2);
    RopeTables(pos.data(), 2, RopeInverseFrequencies(d, 10000.0), c.data(),
               s.data());
    std::vector<float> both(2 * d);
    std::copy(q.begin(), q.end(), both.begin());
    std::copy(k.begin(), k.end(), both.begin() + d);
    EXPECT_TRUE(
        RopeForward(both.data(), 2, 1, d, c.data(), s.data(), nullptr).ok());
    double dot = 0;
    for (int64_t i = 0; i < d; ++i) dot += double(both[i]) * both[d + i];
    return dot;
  };
  const double base = dot_at(0);
  for (int32_t p : {1, 13, 500, 3000}) EXPECT_NEAR(dot_at(p), base, 2e-4) << p;
}

TEST(RopeTest, BackwardIsTheGradientOfTheRotation) {
  const int64_t d = 8, heads = 2;
  const std::vector<int32_t> positions = {0, 3, 1000};
  const int64_t rows = positions.size();
  const std::vector<double> inv_freq = RopeInverseFrequencies(d, 1e4);
  std::vector<float> cos_t(rows * d / 2), sin_t(rows * d / 2);
  RopeTables(positions.data(), rows, inv_freq, cos_t.data(), sin_t.data());
  auto x = testing::RandomVector(rows * heads * d, 4);
  auto dy = testing::RandomVector(rows * heads * d, 5);
  // The forward in double with the same (float) tables.
  auto loss = [&](const std::vector<double>& v) {
    std::vector<double> y(v.size());
    for (int64_t item = 0; item < rows * heads; ++item) {
      const int64_t r = item / heads;
      for (int64_t i = 0; i < d / 2; ++i) {
        const double c = cos_t[r * d / 2 + i], s = sin_t[r * d / 2 + i];
        const double a = v[item * d + i], b = v[item * d + i + d / 2];
        y[item * d + i] = a * c - b * s;
        y[item * d + i + d / 2] = b * c + a * s;
      }
    }
    return testing::Project(y, dy);
  };
  const auto want = testing::NumericalGradient(loss, testing::ToDouble(x));
  testing::ExpectSameBitsForAnyWorkerCount([&](Mesh* mesh) {
    std::vector<float> g = dy;
    EXPECT_TRUE(
        RopeBackward(g.data(), rows, heads, d, cos_t.data(), sin_t.data(), mesh)
            .ok());
    EXPECT_LT(testing::MaxRelativeError(g, want), 1e-6);
    return g;
  });
  // Rotating back undoes the rotation.
  std::vector<float> round_trip = x;
  ASSERT_TRUE(RopeForward(round_trip.data(), rows, heads, d, cos_t.data(),
                          sin_t.data(), nullptr)
                  .ok());
  ASSERT_TRUE(RopeBackward(round_trip.data(), rows, heads, d, cos_t.data(),
                           sin_t.data(), nullptr)
                  .ok());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(round_trip[i], x[i], 1e-5);
}

}  // namespace
}  // namespace rlrt
