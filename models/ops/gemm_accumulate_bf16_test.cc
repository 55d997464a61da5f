// AccumulateGemmBf16 against the arithmetic its header promises, written
// out here one output at a time, against float64 products of the same BF16
// values, across splits, and against the portable path's bits.
#include "models/ops/gemm_accumulate_bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "models/dtype.h"
#include "models/ops/op_test_util.h"

namespace rlrt {

// models_ops_gemm_scalar: this file compiled with the portable path only.
void AccumulateGemmBf16PortableForTest(const AccumulateGemmBf16Args& args,
                                       int64_t row_begin, int64_t row_end,
                                       int64_t col_begin, int64_t col_end);

namespace {
// Apart from the helpers of the other tests a unity build merges with these.
namespace accumulate_bf16_test {

using testing::RandomVector;

std::vector<uint16_t> RandomBf16(size_t n, uint32_t seed) {
  const std::vector<float> v = RandomVector(n, seed);
  std::vector<uint16_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = F32ToBf16(v[i]);
  return out;
}

float AAt(const AccumulateGemmBf16Args& g, int64_t i, int64_t p) {
  return Bf16ToF32(g.a[i * g.a_row_stride + p * g.a_inner_stride]);
}

// One output as documented: blocks of 256 from zero, pairs (p, p + 1)
// taking p + 1's product first, an odd tail padded with zeros, each
// block's total added to c.
float DocumentedOutput(const AccumulateGemmBf16Args& g, int64_t i, int64_t j,
                       float c) {
  for (int64_t p0 = 0; p0 < g.inner; p0 += kAccumulateBlock) {
    const int64_t p1 = std::min(g.inner, p0 + kAccumulateBlock);
    float block = 0.0f;
    for (int64_t p = p0; p < p1; p += 2) {
      const bool pair = p + 1 < p1;
      const float a1 = pair ? AAt(g, i, p + 1) : 0.0f;
      const float b1 = pair ? Bf16ToF32(g.b[(p + 1) * g.ldb + j]) : 0.0f;
      block = std::fma(a1, b1, block);
      block = std::fma(AAt(g, i, p), Bf16ToF32(g.b[p * g.ldb + j]), block);
    }
    c += block;
  }
  return c;
}

// A stored by rows ([rows, lda]) or, `transposed`, by columns ([inner,
// lda]): lda at least the stored row's length, longer for a strided view.
struct Problem {
  int64_t rows, cols, inner, lda;
  bool transposed;
  std::vector<uint16_t> a, b;
  std::vector<float> c;
  Problem(int64_t rows, int64_t cols, int64_t inner, int64_t lda, uint32_t seed,
          bool transposed = false)
      : rows(rows),
        cols(cols),
        inner(inner),
        lda(lda),
        transposed(transposed),
        a(RandomBf16((transposed ? inner : rows) * lda, seed)),
        b(RandomBf16(inner * cols, seed + 1)),
        c(RandomVector(rows * cols, seed + 2)) {}
  AccumulateGemmBf16Args Args(float* out) const {
    return {.a = a.data(),
            .a_row_stride = transposed ? 1 : lda,
            .a_inner_stride = transposed ? lda : 1,
            .b = b.data(),
            .ldb = cols,
            .c = out,
            .ldc = cols,
            .inner = inner};
  }
};

bool SameBits(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() &&
         std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

TEST(AccumulateGemmBf16Test, EveryOutputIsTheDocumentedSum) {
  // Inner sizes: one element, odd, a whole block, blocks and an odd tail;
  // rows and columns leaving partial tiles; A's stored rows longer than
  // they need be (a strided view); A read by rows and through swapped
  // strides.
  for (const auto& [inner, transposed] : {std::pair{1, false},
                                          {37, false},
                                          {256, false},
                                          {601, false},
                                          {1, true},
                                          {38, true},
                                          {601, true}}) {
    const Problem p(19, 45, inner, (transposed ? 19 : inner) + 3, 10 + inner,
                    transposed);
    std::vector<float> got = p.c;
    AccumulateGemmBf16(p.Args(got.data()), 0, p.rows, 0, p.cols);
    std::vector<float> want = p.c;
    for (int64_t i = 0; i < p.rows; ++i) {
      for (int64_t j = 0; j < p.cols; ++j) {
        want[i * p.cols + j] =
            DocumentedOutput(p.Args(nullptr), i, j, p.c[i * p.cols + j]);
      }
    }
    EXPECT_TRUE(SameBits(got, want))
        << "inner=" << inner << " transposed=" << transposed << " path "
        << AccumulateGemmBf16Path();
  }
}

TEST(AccumulateGemmBf16Test, IsCloseToTheExactProductOfTheBf16Values) {
  const Problem p(9, 40, 1000, 1000, 3);
  std::vector<float> got = p.c;
  AccumulateGemmBf16(p.Args(got.data()), 0, p.rows, 0, p.cols);
  for (int64_t i = 0; i < p.rows; ++i) {
    for (int64_t j = 0; j < p.cols; ++j) {
      double exact = p.c[i * p.cols + j], magnitude = std::fabs(exact);
      for (int64_t k = 0; k < p.inner; ++k) {
        const double term =
            double(AAt(p.Args(nullptr), i, k)) * Bf16ToF32(p.b[k * p.cols + j]);
        exact += term;
        magnitude += std::fabs(term);
      }
      // Float32 sums of exact products: within (256 + P / 256) units of
      // rounding of the magnitude sum.
      const double bound = magnitude * (256 + p.inner / 256 + 1) *
                           std::numeric_limits<float>::epsilon();
      EXPECT_NEAR(got[i * p.cols + j], exact, bound) << i << "," << j;
    }
  }
}

TEST(AccumulateGemmBf16Test, AnySplitOfRowsAndColumnsGivesTheSameBits) {
  const Problem p(21, 77, 300, 300, 4);
  std::vector<float> whole = p.c, pieces = p.c;
  AccumulateGemmBf16(p.Args(whole.data()), 0, p.rows, 0, p.cols);
  for (int64_t r0 = 0; r0 < p.rows; r0 += 5) {
    for (int64_t c0 = 0; c0 < p.cols; c0 += 13) {
      AccumulateGemmBf16(p.Args(pieces.data()), r0, std::min(p.rows, r0 + 5),
                         c0, std::min(p.cols, c0 + 13));
    }
  }
  EXPECT_TRUE(SameBits(whole, pieces));
}

TEST(AccumulateGemmBf16Test, PortablePathGivesTheSameBits) {
  for (bool transposed : {false, true}) {
    for (int64_t inner : {1, 2, 37, 256, 601}) {
      const Problem p(13, 70, inner, transposed ? 13 : inner, 20 + inner,
                      transposed);
      std::vector<float> fast = p.c, portable = p.c;
      AccumulateGemmBf16(p.Args(fast.data()), 0, p.rows, 0, p.cols);
      AccumulateGemmBf16PortableForTest(p.Args(portable.data()), 0, p.rows, 0,
                                        p.cols);
      EXPECT_TRUE(SameBits(fast, portable))
          << "inner=" << inner << " transposed=" << transposed;
    }
  }
}

TEST(AccumulateGemmBf16Test, TouchesOnlyItsRangeAndReadsNoFurther) {
  // Exactly sized operands (ASan sees any read past them), an odd inner
  // size so the last pair is padded, and a range inside C.
  for (bool transposed : {false, true}) {
    const Problem p(10, 40, 7, transposed ? 10 : 7, 6, transposed);
    std::vector<float> got = p.c;
    AccumulateGemmBf16(p.Args(got.data()), 2, 7, 3, 35);
    for (int64_t i = 0; i < p.rows; ++i) {
      for (int64_t j = 0; j < p.cols; ++j) {
        const bool inside = i >= 2 && i < 7 && j >= 3 && j < 35;
        const float before = p.c[i * p.cols + j];
        const float want =
            inside ? DocumentedOutput(p.Args(nullptr), i, j, before) : before;
        EXPECT_EQ(got[i * p.cols + j], want)
            << i << "," << j << " " << transposed;
      }
    }
  }
}

}  // namespace accumulate_bf16_test
}  // namespace
}  // namespace rlrt
