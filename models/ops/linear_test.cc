#include "models/ops/linear.h"

#include <gtest/gtest.h>

#include <array>

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

// Backward: dy = R is the gradient of L = sum R * y, and the reference
// gradients come from central differences of L through a double-precision
// forward (the linear map makes them exact up to ~1e-9).
struct LinearCase {
  int64_t t, k, n;
  std::vector<float> x, w, b, dy;
};

LinearCase MakeLinearCase(int64_t t, int64_t k, int64_t n) {
  return {t,
          k,
          n,
          RandomVector(t * k, 11),
          RandomVector(n * k, 12, 0.3f),
          RandomVector(n, 13),
          RandomVector(t * n, 14)};
}

std::vector<double> DoubleLinear(const LinearCase& c,
                                 const std::vector<double>& x,
                                 const std::vector<double>& w,
                                 const std::vector<double>& b) {
  std::vector<double> y(c.t * c.n);
  for (int64_t r = 0; r < c.t; ++r) {
    for (int64_t o = 0; o < c.n; ++o) {
      double s = b[o];
      for (int64_t i = 0; i < c.k; ++i) s += x[r * c.k + i] * w[o * c.k + i];
      y[r * c.n + o] = s;
    }
  }
  return y;
}

struct LinearGrads {
  std::vector<float> dx, dw, db;
};

// The case's inputs; no outputs yet.
LinearBackwardArgs InputsOf(const LinearCase& c) {
  LinearBackwardArgs a;
  a.x = c.x.data();
  a.weight = c.w.data();
  a.dy = c.dy.data();
  a.rows = c.t;
  a.in = c.k;
  a.out = c.n;
  return a;
}

LinearGrads RunLinearBackward(const LinearCase& c, Mesh* mesh,
                              float initial = 0.0f) {
  LinearGrads g{std::vector<float>(c.t * c.k, initial),
                std::vector<float>(c.n * c.k, initial),
                std::vector<float>(c.n, initial)};
  LinearBackwardArgs a = InputsOf(c);
  a.dx = g.dx.data();
  a.accumulate_dx = initial != 0.0f;
  a.dweight = g.dw.data();
  a.dbias = g.db.data();
  EXPECT_TRUE(LinearBackward(a, mesh).ok());
  return g;
}

TEST(LinearBackwardTest, MatchesFiniteDifferencesOfADoubleForward) {
  // Odd sizes, then reductions past one summation block (256): dW and db
  // over t = 270 rows, dx over n = 300 outputs.
  for (auto [t, k, n] : std::vector<std::array<int64_t, 3>>{
           {5, 37, 53}, {270, 3, 5}, {2, 3, 300}}) {
    const LinearCase c = MakeLinearCase(t, k, n);
    const auto x = testing::ToDouble(c.x), w = testing::ToDouble(c.w),
               b = testing::ToDouble(c.b);
    auto loss_x = [&](const std::vector<double>& v) {
      return testing::Project(DoubleLinear(c, v, w, b), c.dy);
    };
    auto loss_w = [&](const std::vector<double>& v) {
      return testing::Project(DoubleLinear(c, x, v, b), c.dy);
    };
    auto loss_b = [&](const std::vector<double>& v) {
      return testing::Project(DoubleLinear(c, x, w, v), c.dy);
    };
    const LinearGrads g = RunLinearBackward(c, nullptr);
    EXPECT_LT(
        testing::MaxRelativeError(g.dx, testing::NumericalGradient(loss_x, x)),
        1e-5);
    EXPECT_LT(
        testing::MaxRelativeError(g.dw, testing::NumericalGradient(loss_w, w)),
        1e-5);
    EXPECT_LT(
        testing::MaxRelativeError(g.db, testing::NumericalGradient(loss_b, b)),
        1e-5);
  }
}

TEST(LinearBackwardTest, AccumulatesIntoExistingGradients) {
  const LinearCase c = MakeLinearCase(7, 20, 33);
  const LinearGrads fresh = RunLinearBackward(c, nullptr);
  const LinearGrads added = RunLinearBackward(c, nullptr, 1.5f);
  for (size_t i = 0; i < fresh.dx.size(); ++i)
    EXPECT_NEAR(added.dx[i], fresh.dx[i] + 1.5f, 1e-5);
  for (size_t i = 0; i < fresh.dw.size(); ++i)
    EXPECT_NEAR(added.dw[i], fresh.dw[i] + 1.5f, 1e-5);
  for (size_t i = 0; i < fresh.db.size(); ++i)
    EXPECT_NEAR(added.db[i], fresh.db[i] + 1.5f, 1e-5);
}

TEST(LinearBackwardTest, BitsDoNotDependOnTheWorkerCount) {
  const LinearCase c = MakeLinearCase(41, 70, 300);
  testing::ExpectSameBitsForAnyWorkerCount([&](Mesh* mesh) {
    LinearGrads g = RunLinearBackward(c, mesh);
    g.dx.insert(g.dx.end(), g.dw.begin(), g.dw.end());
    g.dx.insert(g.dx.end(), g.db.begin(), g.db.end());
    return g.dx;
  });
}

TEST(LinearBackwardTest, NullOutputsAreSkipped) {
  const LinearCase c = MakeLinearCase(3, 8, 16);
  std::vector<float> dw(c.n * c.k, 0.0f);
  LinearBackwardArgs a = InputsOf(c);
  a.dweight = dw.data();
  ASSERT_TRUE(LinearBackward(a, nullptr).ok());
  EXPECT_TRUE(testing::SameBits(dw, RunLinearBackward(c, nullptr).dw));
}

}  // namespace
}  // namespace rlrt
