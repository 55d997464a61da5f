#include "models/ops/fixed_order_dot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "models/dtype.h"
#include "models/ops/op_test_util.h"

namespace rlrt {
namespace {

// The documented order, written out element by element: lane l takes the
// elements i = l (mod 16) in order with fused multiply-adds, then
// l[i] += l[i + w] for w = 8, 4, 2, 1.
float DocumentedOrder(const std::vector<float>& a, const std::vector<float>& b,
                      int64_t offset, int64_t n) {
  float lanes[16] = {};
  for (int64_t i = 0; i < n; ++i)
    lanes[i % 16] = std::fma(a[i], b[offset + i], lanes[i % 16]);
  for (int w = 8; w > 0; w /= 2) {
    for (int l = 0; l < w; ++l) lanes[l] += lanes[l + w];
  }
  return lanes[0];
}

TEST(FixedOrderDotTest, EveryGroupSizeGivesTheDocumentedBits) {
  for (int64_t n : {1, 5, 15, 16, 17, 64, 128, 131}) {
    auto a = testing::RandomVector(n, 1 + n);
    auto b = testing::RandomVector(8 * n, 2 + n);
    std::vector<uint16_t> b16(b.size());
    std::vector<float> b_rounded(b.size());
    for (size_t i = 0; i < b.size(); ++i) {
      b16[i] = F32ToBf16(b[i]);
      b_rounded[i] = Bf16ToF32(b16[i]);
    }
    const float* rows[8];
    const uint16_t* rows16[8];
    for (int j = 0; j < 8; ++j) {
      rows[j] = b.data() + j * n;
      rows16[j] = b16.data() + j * n;
    }
    float eight[8], four[4], eight16[8];
    gemm_internal::FixedOrderDots<8>(a.data(), rows, n, eight);
    gemm_internal::FixedOrderDots<4>(a.data(), rows + 4, n, four);
    gemm_internal::FixedOrderDots<8>(a.data(), rows16, n, eight16);
    for (int j = 0; j < 8; ++j) {
      const float expected = DocumentedOrder(a, b, j * n, n);
      EXPECT_EQ(eight[j], expected) << "n=" << n << " j=" << j;
      EXPECT_EQ(gemm_internal::FixedOrderDot(a.data(), rows[j], n), expected)
          << "n=" << n << " j=" << j;
      if (j >= 4) {
        EXPECT_EQ(four[j - 4], expected) << "n=" << n;
      }
      EXPECT_EQ(eight16[j], DocumentedOrder(a, b_rounded, j * n, n))
          << "BF16 n=" << n << " j=" << j;
    }
  }
}

// Each element is the FMA chain over the rows in order, from zero, for
// widths that fill blocks of 16, leave a tail, or need more than one pass.
TEST(FixedOrderDotTest, WeightedRowSumIsTheFmaChainOfEachElement) {
  for (int64_t n : {1, 7, 16, 40, 128, 131, 300}) {
    const int64_t count = 13;
    auto weights = testing::RandomVector(count, 3 + n);
    auto rows = testing::RandomVector(count * n, 4 + n);
    std::vector<uint16_t> rows16(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) rows16[i] = F32ToBf16(rows[i]);
    std::vector<float> out(n + 1, -7.0f), out16(n + 1, -7.0f);
    gemm_internal::WeightedRowSum(
        weights.data(), [&](int64_t p) { return rows.data() + p * n; }, count,
        n, out.data());
    gemm_internal::WeightedRowSum(
        weights.data(), [&](int64_t p) { return rows16.data() + p * n; }, count,
        n, out16.data());
    for (int64_t i = 0; i < n; ++i) {
      float expected = 0, expected16 = 0;
      for (int64_t p = 0; p < count; ++p) {
        expected = std::fma(weights[p], rows[p * n + i], expected);
        expected16 =
            std::fma(weights[p], Bf16ToF32(rows16[p * n + i]), expected16);
      }
      ASSERT_EQ(out[i], expected) << "n=" << n << " i=" << i;
      ASSERT_EQ(out16[i], expected16) << "n=" << n << " i=" << i;
    }
    EXPECT_EQ(out[n], -7.0f) << "wrote past the end, n=" << n;
    EXPECT_EQ(out16[n], -7.0f) << "wrote past the end, n=" << n;
  }
}

}  // namespace
}  // namespace rlrt
