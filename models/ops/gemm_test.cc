#include "models/ops/gemm.h"

#include <gtest/gtest.h>

#include "models/ops/op_test_util.h"

namespace rlrt {

// gemm.cc compiled again with only the scalar std::fma path (see CMakeLists).
void RowInvariantGemmScalarForTest(const GemmArgs& args, int64_t n_begin,
                                   int64_t n_end);

namespace {

TEST(GemmTest, VectorAndScalarPathsGiveIdenticalBits) {
  // Row counts 1 to 4 take the wide column tiles, more take the tall ones.
  for (int64_t k : {5, 16, 37, 1024}) {
    for (int64_t rows : {1, 2, 3, 4, 6, 19}) {
      const int64_t n = 23;
      auto x = testing::RandomVector(rows * k, 1 + k);
      auto w = testing::RandomVector(n * k, 2 + k);
      auto b = testing::RandomVector(n, 3);
      std::vector<float> fast(rows * n), scalar(rows * n);
      RowInvariantGemm(
          {x.data(), rows, k, w.data(), b.data(), fast.data(), n, false}, 0, n);
      RowInvariantGemmScalarForTest(
          {x.data(), rows, k, w.data(), b.data(), scalar.data(), n, false}, 0,
          n);
      EXPECT_EQ(fast, scalar) << "k=" << k << " rows=" << rows;
    }
  }
}

// Every tile shape gives a row the same bits: rows computed in batches of
// 1 to 9 equal the same rows computed all at once.
TEST(GemmTest, BatchesOfAnySizeGiveARowTheSameBits) {
  const int64_t rows = 19, k = 300, n = 37;
  auto x = testing::RandomVector(rows * k, 6);
  auto w = testing::RandomVector(n * k, 7);
  std::vector<float> whole(rows * n);
  RowInvariantGemm(
      {x.data(), rows, k, w.data(), nullptr, whole.data(), n, false}, 0, n);
  for (int64_t batch = 1; batch <= 9; ++batch) {
    std::vector<float> parts(rows * n);
    for (int64_t r0 = 0; r0 < rows; r0 += batch) {
      const int64_t count = std::min(batch, rows - r0);
      RowInvariantGemm({x.data() + r0 * k, count, k, w.data(), nullptr,
                        parts.data() + r0 * n, n, false},
                       0, n);
    }
    EXPECT_EQ(whole, parts) << "batches of " << batch;
  }
}

TEST(GemmTest, ColumnRangesComposeExactly) {
  const int64_t rows = 9, k = 70, n = 41;
  auto x = testing::RandomVector(rows * k, 4);
  auto w = testing::RandomVector(n * k, 5);
  std::vector<float> whole(rows * n), pieces(rows * n);
  RowInvariantGemm(
      {x.data(), rows, k, w.data(), nullptr, whole.data(), n, false}, 0, n);
  for (int64_t n0 = 0; n0 < n; n0 += 7) {
    RowInvariantGemm(
        {x.data(), rows, k, w.data(), nullptr, pieces.data(), n, false}, n0,
        std::min<int64_t>(n, n0 + 7));
  }
  EXPECT_EQ(whole, pieces);
}

}  // namespace
}  // namespace rlrt
