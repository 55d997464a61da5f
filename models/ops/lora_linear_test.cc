#include "models/ops/lora_linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "models/ops/op_test_util.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::RandomVector;

// Sizes that leave partial blocks everywhere.
struct LoraCase {
  int64_t rows = 5, in = 19, out = 21, rank = 3;
  float scale = 0.75f;
  std::vector<float> x = RandomVector(rows * in, 11);
  std::vector<float> a = RandomVector(rank * in, 12, 0.3f);
  std::vector<float> b = RandomVector(out * rank, 13, 0.3f);
  std::vector<float> y0 = RandomVector(rows * out, 14);  // the base's output
  std::vector<float> dy = RandomVector(rows * out, 15);

  LoraFactors Factors() const { return {a.data(), b.data(), rank, scale}; }
};

// y0 + s (x A^T) B^T in double, straight from the definition.
std::vector<double> Reference(const LoraCase& c, const std::vector<double>& x,
                              const std::vector<double>& a,
                              const std::vector<double>& b) {
  std::vector<double> y(c.y0.begin(), c.y0.end());
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t o = 0; o < c.out; ++o) {
      double sum = 0;
      for (int64_t k = 0; k < c.rank; ++k) {
        double t = 0;
        for (int64_t i = 0; i < c.in; ++i)
          t += x[r * c.in + i] * a[k * c.in + i];
        sum += t * b[o * c.rank + k];
      }
      y[r * c.out + o] += c.scale * sum;
    }
  }
  return y;
}

std::vector<float> RunForward(const LoraCase& c, Mesh* mesh) {
  std::vector<float> y = c.y0;
  std::vector<float> u(c.rows * c.rank);
  EXPECT_TRUE(LoraForward({.factors = c.Factors(),
                           .x = c.x.data(),
                           .rows = c.rows,
                           .in = c.in,
                           .out = c.out,
                           .u = u.data(),
                           .y = y.data()},
                          mesh)
                  .ok());
  return y;
}

struct LoraGrads {
  std::vector<float> dx, da, db;
};

LoraGrads RunBackward(const LoraCase& c, Mesh* mesh) {
  LoraGrads g{std::vector<float>(c.rows * c.in, 0.5f),
              std::vector<float>(c.rank * c.in, 0.25f),
              std::vector<float>(c.out * c.rank, -0.25f)};
  std::vector<float> u(c.rows * c.rank), du(c.rows * c.rank);
  EXPECT_TRUE(LoraBackward({.factors = c.Factors(),
                            .x = c.x.data(),
                            .dy = c.dy.data(),
                            .rows = c.rows,
                            .in = c.in,
                            .out = c.out,
                            .u = u.data(),
                            .du = du.data(),
                            .dx = g.dx.data(),
                            .da = g.da.data(),
                            .db = g.db.data()},
                           mesh)
                  .ok());
  return g;
}

TEST(LoraLinearTest, ForwardAddsTheScaledLowRankProduct) {
  const LoraCase c;
  const std::vector<double> want =
      Reference(c, testing::ToDouble(c.x), testing::ToDouble(c.a),
                testing::ToDouble(c.b));
  const std::vector<float> got = RunForward(c, nullptr);
  EXPECT_LT(testing::MaxAbsDiff(got.data(), want.data(), got.size()), 1e-5);
}

TEST(LoraLinearTest, RowsDoNotDependOnTheirBatchOrWorkerCount) {
  const LoraCase c;
  const std::vector<float> whole = RunForward(c, nullptr);
  testing::ExpectSameBitsForAnyWorkerCount(
      [&](Mesh* mesh) { return RunForward(c, mesh); });
  // Each row alone gives the bits it got inside the batch.
  for (int64_t r = 0; r < c.rows; ++r) {
    LoraCase one;
    one.rows = 1;
    one.x.assign(c.x.begin() + r * c.in, c.x.begin() + (r + 1) * c.in);
    one.y0.assign(c.y0.begin() + r * c.out, c.y0.begin() + (r + 1) * c.out);
    const std::vector<float> alone = RunForward(one, nullptr);
    EXPECT_EQ(0, std::memcmp(alone.data(), whole.data() + r * c.out,
                             c.out * sizeof(float)))
        << "row " << r;
  }
}

TEST(LoraLinearTest, BackwardMatchesCentralDifferencesAndAccumulates) {
  const LoraCase c;
  const LoraGrads g = RunBackward(c, nullptr);
  const std::vector<double> x = testing::ToDouble(c.x);
  const std::vector<double> a = testing::ToDouble(c.a);
  const std::vector<double> b = testing::ToDouble(c.b);
  auto loss = [&](const std::vector<double>& xx, const std::vector<double>& aa,
                  const std::vector<double>& bb) {
    return testing::Project(Reference(c, xx, aa, bb), c.dy);
  };
  const auto want_dx = testing::NumericalGradient(
      [&](const std::vector<double>& v) { return loss(v, a, b); }, x);
  const auto want_da = testing::NumericalGradient(
      [&](const std::vector<double>& v) { return loss(x, v, b); }, a);
  const auto want_db = testing::NumericalGradient(
      [&](const std::vector<double>& v) { return loss(x, a, v); }, b);
  // The buffers started at 0.5, 0.25 and -0.25: gradients add into them.
  auto minus = [](std::vector<float> v, float start) {
    for (float& e : v) e -= start;
    return v;
  };
  EXPECT_LT(testing::MaxRelativeError(minus(g.dx, 0.5f), want_dx), 1e-5);
  EXPECT_LT(testing::MaxRelativeError(minus(g.da, 0.25f), want_da), 1e-5);
  EXPECT_LT(testing::MaxRelativeError(minus(g.db, -0.25f), want_db), 1e-5);
  testing::ExpectSameBitsForAnyWorkerCount([&](Mesh* mesh) {
    const LoraGrads w = RunBackward(c, mesh);
    std::vector<float> all = w.dx;
    all.insert(all.end(), w.da.begin(), w.da.end());
    all.insert(all.end(), w.db.begin(), w.db.end());
    return all;
  });
}

TEST(LoraLinearTest, RefusesMissingFactorsAndBuffers) {
  const LoraCase c;
  std::vector<float> y = c.y0, u(c.rows * c.rank);
  LoraForwardArgs args{.factors = c.Factors(),
                       .x = c.x.data(),
                       .rows = c.rows,
                       .in = c.in,
                       .out = c.out,
                       .u = u.data(),
                       .y = y.data()};
  args.factors.rank = 0;
  EXPECT_FALSE(LoraForward(args, nullptr).ok());
  args.factors = c.Factors();
  args.factors.b = nullptr;
  EXPECT_FALSE(LoraForward(args, nullptr).ok());
  args.factors = c.Factors();
  args.u = nullptr;
  EXPECT_FALSE(LoraForward(args, nullptr).ok());
  EXPECT_TRUE(testing::SameBits(y, c.y0));  // nothing written
}

}  // namespace
}  // namespace rlrt
