#include "models/ops/rmsnorm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "models/ops/op_test_util.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

TEST(RmsNormTest, MatchesTheDefinition) {
  const int64_t rows = 7, dim = 33;
  auto x = testing::RandomVector(rows * dim, 1, 3.0f);
  auto w = testing::RandomVector(dim, 2);
  std::vector<double> expected(rows * dim);
  for (int64_t r = 0; r < rows; ++r) {
    double ms = 0;
    for (int64_t i = 0; i < dim; ++i)
      ms += double(x[r * dim + i]) * x[r * dim + i];
    ms /= dim;
    for (int64_t i = 0; i < dim; ++i) {
      expected[r * dim + i] = w[i] * x[r * dim + i] / std::sqrt(ms + 1e-6);
    }
  }
  std::vector<float> y(rows * dim);
  auto mesh = testing::MakeMesh(2);
  ASSERT_TRUE(
      RmsNormForward(x.data(), w.data(), y.data(), rows, dim, 1e-6f, mesh.get())
          .ok());
  EXPECT_LT(testing::MaxAbsDiff(y.data(), expected.data(), y.size()), 1e-5);
  // In place gives the same result.
  ASSERT_TRUE(
      RmsNormForward(x.data(), w.data(), x.data(), rows, dim, 1e-6f, nullptr)
          .ok());
  EXPECT_EQ(x, y);
}

TEST(RmsNormTest, EpsilonMattersForTinyRows) {
  std::vector<float> x(4, 0.0f), w(4, 1.0f), y(4);
  x[0] = 1e-4f;
  ASSERT_TRUE(
      RmsNormForward(x.data(), w.data(), y.data(), 1, 4, 1e-2f, nullptr).ok());
  EXPECT_NEAR(y[0], 1e-4 / std::sqrt(1e-8 / 4 + 1e-2), 1e-9);
}

// y = w * x / sqrt(mean(x^2) + eps) per row, in double.
std::vector<double> DoubleRmsNorm(const std::vector<double>& x,
                                  const std::vector<double>& w, int64_t dim,
                                  double eps) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / dim; ++r) {
    double ms = 0;
    for (int64_t i = 0; i < dim; ++i) ms += x[r * dim + i] * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(ms / dim + eps);
    for (int64_t i = 0; i < dim; ++i)
      y[r * dim + i] = w[i] * x[r * dim + i] * inv;
  }
  return y;
}

struct NormGrads {
  std::vector<float> dx, dw;
};

NormGrads RunRmsNormBackward(const std::vector<float>& x,
                             const std::vector<float>& w,
                             const std::vector<float>& dy, int64_t dim,
                             float eps, Mesh* mesh, bool in_place = false) {
  const int64_t rows = x.size() / dim;
  NormGrads g{in_place ? dy : std::vector<float>(x.size()),
              std::vector<float>(dim, 0.0f)};
  std::vector<double> inv_rms(rows);
  RmsNormBackwardArgs a;
  a.x = x.data();
  a.weight = w.data();
  a.dy = in_place ? g.dx.data() : dy.data();
  a.dx = g.dx.data();
  a.dweight = g.dw.data();
  a.inv_rms = inv_rms.data();
  a.rows = rows;
  a.dim = dim;
  a.eps = eps;
  EXPECT_TRUE(RmsNormBackward(a, mesh).ok());
  return g;
}

TEST(RmsNormBackwardTest, MatchesFiniteDifferencesOfADoubleForward) {
  // 300 rows: the weight gradient sums past any 256-row block.
  for (auto shape :
       std::vector<std::pair<int64_t, int64_t>>{{7, 33}, {300, 4}}) {
    // Named copies: lambdas below capture them (clang 14 cannot capture a
    // structured binding).
    const int64_t rows = shape.first, dim = shape.second;
    auto x = testing::RandomVector(rows * dim, 3, 2.0f);
    auto w = testing::RandomVector(dim, 4);
    auto dy = testing::RandomVector(rows * dim, 5);
    const float eps = 1e-2f;  // Large enough to matter in the gradient.
    const auto xd = testing::ToDouble(x), wd = testing::ToDouble(w);
    const auto want_dx = testing::NumericalGradient(
        [&](const std::vector<double>& v) {
          return testing::Project(DoubleRmsNorm(v, wd, dim, eps), dy);
        },
        xd);
    const auto want_dw = testing::NumericalGradient(
        [&](const std::vector<double>& v) {
          return testing::Project(DoubleRmsNorm(xd, v, dim, eps), dy);
        },
        wd);
    const NormGrads g = RunRmsNormBackward(x, w, dy, dim, eps, nullptr);
    EXPECT_LT(testing::MaxRelativeError(g.dx, want_dx), 1e-6) << rows;
    EXPECT_LT(testing::MaxRelativeError(g.dw, want_dw), 1e-6) << rows;
    // dx may overwrite dy.
    const NormGrads in_place =
        RunRmsNormBackward(x, w, dy, dim, eps, nullptr, true);
    EXPECT_TRUE(testing::SameBits(in_place.dx, g.dx));
    EXPECT_TRUE(testing::SameBits(in_place.dw, g.dw));
  }
}

TEST(RmsNormBackwardTest, BitsDoNotDependOnTheWorkerCount) {
  const int64_t rows = 37, dim = 70;
  auto x = testing::RandomVector(rows * dim, 6);
  auto w = testing::RandomVector(dim, 7);
  auto dy = testing::RandomVector(rows * dim, 8);
  testing::ExpectSameBitsForAnyWorkerCount([&](Mesh* mesh) {
    NormGrads g = RunRmsNormBackward(x, w, dy, dim, 1e-6f, mesh);
    g.dx.insert(g.dx.end(), g.dw.begin(), g.dw.end());
    return g.dx;
  });
}

TEST(RmsNormBackwardTest, AccumulatesDxForResidualBranches) {
  const int64_t rows = 3, dim = 16;
  auto x = testing::RandomVector(rows * dim, 9);
  auto w = testing::RandomVector(dim, 10);
  auto dy = testing::RandomVector(rows * dim, 11);
  const NormGrads fresh = RunRmsNormBackward(x, w, dy, dim, 1e-6f, nullptr);
  std::vector<float> dx(rows * dim, 2.0f);
  std::vector<double> inv_rms(rows);
  RmsNormBackwardArgs a;
  a.x = x.data();
  a.weight = w.data();
  a.dy = dy.data();
  a.dx = dx.data();
  a.accumulate_dx = true;
  a.inv_rms = inv_rms.data();
  a.rows = rows;
  a.dim = dim;
  a.eps = 1e-6f;
  ASSERT_TRUE(RmsNormBackward(a, nullptr).ok());
  for (size_t i = 0; i < dx.size(); ++i)
    EXPECT_NEAR(dx[i], fresh.dx[i] + 2.0f, 1e-6);
  a.dy = dx.data();  // Accumulating into dy itself is refused.
  EXPECT_FALSE(RmsNormBackward(a, nullptr).ok());
}

}  // namespace
}  // namespace rlrt
