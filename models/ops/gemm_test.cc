#include "models/ops/gemm.h"

#include <gtest/gtest.h>

#include "models/ops/op_test_util.h"

namespace rlrt {

// gemm.cc compiled again with only the scalar std::fma path (see CMakeLists).
void RowInvariantGemmScalarForTest(const GemmArgs& args, int64_t n_begin,
                                   int64_t n_end);

namespace {

TEST(GemmTest, VectorAndScalarPathsGiveIdenticalBits) {
  for (int64_t k : {5, 16, 37, 1024}) {
    const int64_t rows = 19, n = 23;
    auto x = testing::RandomVector(rows * k, 1 + k);
    auto w = testing::RandomVector(n * k, 2 + k);
    auto b = testing::RandomVector(n, 3);
    std::vector<float> fast(rows * n), scalar(rows * n);
    RowInvariantGemm(
        {x.data(), rows, k, w.data(), b.data(), fast.data(), n, false}, 0, n);
    RowInvariantGemmScalarForTest(
        {x.data(), rows, k, w.data(), b.data(), scalar.data(), n, false}, 0, n);
    EXPECT_EQ(fast, scalar) << "k=" << k;
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
