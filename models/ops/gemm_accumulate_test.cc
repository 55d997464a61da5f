#include "models/ops/gemm_accumulate.h"

#include <gtest/gtest.h>

#include "models/ops/op_test_util.h"

namespace rlrt {
namespace {

using testing::RandomVector;

// C[i, j] + sum_p A(i, p) B[p, j] in double.
std::vector<double> Reference(const AccumulateGemmArgs& g, int64_t rows,
                              int64_t cols, const std::vector<float>& c0) {
  std::vector<double> c(c0.begin(), c0.end());
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < g.inner; ++p) {
        sum += double(g.a[i * g.a_row_stride + p * g.a_inner_stride]) *
               g.b[p * g.ldb + j];
      }
      c[i * g.ldc + j] += sum;
    }
  }
  return c;
}

TEST(AccumulateGemmTest, MatchesNaiveProductInBothOperandLayouts) {
  // Inner sizes below, at and past the 256-long summation block, and sizes
  // that leave partial tiles in both directions.
  for (int64_t inner : {1, 37, 256, 600}) {
    const int64_t rows = 19, cols = 45;
    auto a = RandomVector(rows * inner, 1 + inner);
    auto b = RandomVector(inner * cols, 2 + inner);
    auto c = RandomVector(rows * cols, 3);
    for (bool transposed : {false, true}) {
      // A stored [rows, inner], or [inner, rows] and read through strides.
      AccumulateGemmArgs g{a.data(),
                           transposed ? 1 : inner,
                           transposed ? rows : 1,
                           b.data(),
                           cols,
                           nullptr,
                           cols,
                           inner};
      const std::vector<double> want = Reference(g, rows, cols, c);
      std::vector<float> got = c;
      g.c = got.data();
      AccumulateGemm(g, 0, rows, 0, cols);
      EXPECT_LT(testing::MaxAbsDiff(got.data(), want.data(), got.size()),
                2e-6 * std::sqrt(double(inner)) * 4)
          << "inner=" << inner << " transposed=" << transposed;
    }
  }
}

TEST(AccumulateGemmTest, AnySplitOfRowsAndColumnsGivesTheSameBits) {
  // The promise the backward's worker independence rests on: an output's
  // bits do not depend on the range (or the tile) that computes it.
  const int64_t rows = 21, cols = 77, inner = 300;
  auto a = RandomVector(rows * inner, 4);
  auto b = RandomVector(inner * cols, 5);
  std::vector<float> whole(rows * cols, 0.5f), pieces = whole;
  AccumulateGemmArgs g{a.data(), inner,        1,    b.data(),
                       cols,     whole.data(), cols, inner};
  AccumulateGemm(g, 0, rows, 0, cols);
  g.c = pieces.data();
  for (int64_t r0 = 0; r0 < rows; r0 += 5) {
    for (int64_t c0 = 0; c0 < cols; c0 += 13) {
      AccumulateGemm(g, r0, std::min(rows, r0 + 5), c0,
                     std::min(cols, c0 + 13));
    }
  }
  EXPECT_TRUE(testing::SameBits(whole, pieces));
}

TEST(AccumulateGemmTest, TouchesOnlyItsRange) {
  const int64_t rows = 10, cols = 40, inner = 8;
  auto a = RandomVector(rows * inner, 6);
  auto b = RandomVector(inner * cols, 7);
  std::vector<float> c(rows * cols, 2.0f);
  AccumulateGemm({a.data(), inner, 1, b.data(), cols, c.data(), cols, inner}, 3,
                 7, 5, 33);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      const bool inside = i >= 3 && i < 7 && j >= 5 && j < 33;
      if (!inside) {
        EXPECT_EQ(c[i * cols + j], 2.0f) << i << "," << j;
      }
    }
  }
}

}  // namespace
}  // namespace rlrt
