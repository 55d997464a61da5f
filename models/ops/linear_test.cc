#include "models/ops/linear.h"

#include <gtest/gtest.h>

#include "models/ops/op_test_util.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::MaxAbsDiff;
using testing::RandomVector;

std::vector<double> Reference(const std::vector<float>& x,
                              const std::vector<float>& w,
                              const std::vector<float>* b, int64_t t, int64_t k,
                              int64_t n) {
  std::vector<double> y(t * n);
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      double s = b ? (*b)[c] : 0.0;
      for (int64_t i = 0; i < k; ++i)
        s += static_cast<double>(x[r * k + i]) * w[c * k + i];
      y[r * n + c] = s;
    }
  }
  return y;
}

TEST(LinearTest, MatchesNaiveProductForAnyWorkerCountAndKernel) {
  const int64_t t = 5, k = 37,
                n = 53;  // Odd sizes: partial blocks and K tails.
  auto x = RandomVector(t * k, 1);
  auto w = RandomVector(n * k, 2);
  auto b = RandomVector(n, 3);
  const std::vector<double> expected = Reference(x, w, &b, t, k, n);
  for (MatmulKernel kernel :
       {MatmulKernel::kRowInvariant, MatmulKernel::kOpenBlas}) {
    std::vector<float> first;
    for (int workers : {0, 1, 2, 3, 8}) {
      auto mesh = workers > 0 ? testing::MakeMesh(workers) : nullptr;
      std::vector<float> y(t * n, -7.0f);
      LinearArgs a{x.data(), t, k, w.data(), b.data(), n, y.data()};
      a.kernel = kernel;
      ASSERT_TRUE(LinearForward(a, mesh.get()).ok());
      EXPECT_LT(MaxAbsDiff(y.data(), expected.data(), y.size()), 1e-4)
          << workers;
      // Bit-identical across worker counts.
      if (first.empty()) first = y;
      EXPECT_EQ(y, first) << workers;
    }
  }
}

TEST(LinearTest, AccumulatesAndHonoursRowStride) {
  const int64_t t = 3, k = 8, n = 20, ldy = 24;
  auto x = RandomVector(t * k, 4);
  auto w = RandomVector(n * k, 5);
  const std::vector<double> product = Reference(x, w, nullptr, t, k, n);
  for (MatmulKernel kernel :
       {MatmulKernel::kRowInvariant, MatmulKernel::kOpenBlas}) {
    std::vector<float> y(t * ldy, 1.5f);
    LinearArgs a{x.data(), t,        k,   w.data(), nullptr,
                 n,        y.data(), ldy, true,     kernel};
    auto mesh = testing::MakeMesh(2);
    ASSERT_TRUE(LinearForward(a, mesh.get()).ok());
    for (int64_t r = 0; r < t; ++r) {
      for (int64_t c = 0; c < n; ++c) {
        EXPECT_NEAR(y[r * ldy + c], 1.5 + product[r * n + c], 1e-4);
      }
      for (int64_t c = n; c < ldy; ++c)
        EXPECT_EQ(y[r * ldy + c], 1.5f);  // Untouched.
    }
  }
}

TEST(LinearTest, LargeProductsMatchTheReference) {
  // Row counts around the register tile (8) and the row block, K past the
  // lane width with a tail.
  const int64_t k = 1000, n = 70;
  auto w = RandomVector(n * k, 8, 0.05f);
  auto b = RandomVector(n, 9);
  for (int64_t t : {1, 2, 7, 8, 9, 33, 150}) {
    auto x = RandomVector(t * k, 10 + t);
    const std::vector<double> expected = Reference(x, w, &b, t, k, n);
    std::vector<float> y(t * n);
    ASSERT_TRUE(LinearForward({x.data(), t, k, w.data(), b.data(), n, y.data()},
                              nullptr)
                    .ok());
    EXPECT_LT(MaxAbsDiff(y.data(), expected.data(), y.size()), 2e-5) << t;
  }
}

TEST(LinearTest, RowResultsDoNotDependOnOtherRows) {
  // The row-invariant kernel's promise: each row of a 150-row product is
  // bit-identical to that row computed alone (and OpenBLAS is shown to
  // differ, which is why the kernel exists).
  const int64_t k = 1000, n = 96, t = 150;
  auto w = RandomVector(n * k, 6);
  auto x = RandomVector(t * k, 7);
  std::vector<float> batch(t * n), single(n);
  ASSERT_TRUE(LinearForward(
                  {x.data(), t, k, w.data(), nullptr, n, batch.data()}, nullptr)
                  .ok());
  for (int64_t r = 0; r < t; ++r) {
    ASSERT_TRUE(LinearForward({x.data() + r * k, 1, k, w.data(), nullptr, n,
                               single.data()},
                              nullptr)
                    .ok());
    for (int64_t c = 0; c < n; ++c)
      ASSERT_EQ(single[c], batch[r * n + c]) << r << "," << c;
  }
}

}  // namespace
}  // namespace rlrt
