#include "models/ops/gemm_bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "models/dtype.h"
#include "models/ops/op_test_util.h"

namespace rlrt {

// gemm_bf16.cc compiled again with only the scalar std::fma path, and with
// AVX-512F fused multiply-adds instead of vdpbf16ps.
void RowInvariantGemmBf16ScalarForTest(const GemmBf16Args& args,
                                       int64_t n_begin, int64_t n_end);
void RowInvariantGemmBf16Avx512fForTest(const GemmBf16Args& args,
                                        int64_t n_begin, int64_t n_end);

namespace {

std::vector<uint16_t> RandomBf16(size_t n, uint32_t seed, float scale = 1) {
  std::vector<float> f = testing::RandomVector(n, seed, scale);
  std::vector<uint16_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = F32ToBf16(f[i]);
  return out;
}

struct Problem {
  int64_t rows, k, n;
  std::vector<uint16_t> x, w;
  std::vector<float> bias;
  Problem(int64_t rows, int64_t k, int64_t n, uint32_t seed)
      : rows(rows),
        k(k),
        n(n),
        x(RandomBf16(rows * k, seed)),
        w(RandomBf16(n * k, seed + 1, 0.05f)),
        bias(testing::RandomVector(n, seed + 2)) {}
  GemmBf16Args Args(float* y) const {
    return {x.data(), rows, k, w.data(), bias.data(), y, n, false};
  }
};

// The AVX-512 BF16 instruction (or whichever path this build uses) and the
// scalar emulation of its per-lane order give the same bits, for K that
// fill whole 32-element steps, leave a tail, or are odd.
TEST(GemmBf16Test, VectorAndScalarPathsGiveIdenticalBits) {
  // Row counts 1 to 4 take the wide column tiles, more take the tall ones.
  for (int64_t k : {1, 5, 32, 37, 63, 64, 1024, 1031}) {
    for (int64_t rows : {1, 2, 3, 4, 6, 19}) {
      const Problem p(rows, k, 23, static_cast<uint32_t>(k + rows));
      std::vector<float> fast(p.rows * p.n), scalar(p.rows * p.n),
          avx512f(p.rows * p.n);
      RowInvariantGemmBf16(p.Args(fast.data()), 0, p.n);
      RowInvariantGemmBf16ScalarForTest(p.Args(scalar.data()), 0, p.n);
      RowInvariantGemmBf16Avx512fForTest(p.Args(avx512f.data()), 0, p.n);
      EXPECT_EQ(fast, scalar)
          << "k=" << k << " rows=" << rows << " path=" << Bf16GemmPath();
      EXPECT_EQ(avx512f, scalar) << "k=" << k << " rows=" << rows;
    }
  }
}

// A row's outputs do not depend on the rows beside it or on how the
// columns are split among workers.
TEST(GemmBf16Test, RowsAndColumnRangesAreInvariant) {
  const Problem p(37, 200, 41, 7);
  std::vector<float> whole(p.rows * p.n), pieces(p.rows * p.n);
  RowInvariantGemmBf16(p.Args(whole.data()), 0, p.n);
  for (int64_t n0 = 0; n0 < p.n; n0 += 7)
    RowInvariantGemmBf16(p.Args(pieces.data()), n0,
                         std::min<int64_t>(p.n, n0 + 7));
  EXPECT_EQ(whole, pieces);
  // Batches of 1 to 9 rows: every tile shape gives a row the same bits.
  for (int64_t batch = 1; batch <= 9; ++batch) {
    std::vector<float> parts(p.rows * p.n);
    for (int64_t r0 = 0; r0 < p.rows; r0 += batch) {
      GemmBf16Args a = p.Args(parts.data() + r0 * p.n);
      a.x = p.x.data() + r0 * p.k;
      a.rows = std::min(batch, p.rows - r0);
      RowInvariantGemmBf16(a, 0, p.n);
    }
    EXPECT_EQ(whole, parts) << "batches of " << batch;
  }
}

// Against the exact product in double: the only error is float rounding
// of the running sums.
TEST(GemmBf16Test, MatchesADoubleReference) {
  const Problem p(5, 1536, 9, 11);
  std::vector<float> y(p.rows * p.n);
  GemmBf16Args a = p.Args(y.data());
  a.accumulate = true;  // y starts at 1: accumulation adds to it.
  std::fill(y.begin(), y.end(), 1.0f);
  RowInvariantGemmBf16(a, 0, p.n);
  for (int64_t r = 0; r < p.rows; ++r) {
    for (int64_t c = 0; c < p.n; ++c) {
      double want = 0, magnitude = 0;
      for (int64_t i = 0; i < p.k; ++i) {
        const double term = static_cast<double>(Bf16ToF32(p.x[r * p.k + i])) *
                            Bf16ToF32(p.w[c * p.k + i]);
        want += term;
        magnitude += std::fabs(term);
      }
      want += p.bias[c] + 1.0;
      EXPECT_NEAR(y[r * p.n + c], want, 1e-6 * magnitude + 1e-6)
          << r << "," << c;
    }
  }
}

}  // namespace
}  // namespace rlrt
