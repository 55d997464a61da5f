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

}  // namespace
}  // namespace rlrt
