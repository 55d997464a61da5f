#include "models/ops/bf16_accumulate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "models/dtype.h"
#include "models/ops/op_test_util.h"

namespace rlrt {
namespace {

// The float sum the kernel forms, rounded to BF16 by hand: ties to the
// even pattern, bit by bit rather than through F32ToBf16's carry trick.
uint16_t ExpectedSum(uint16_t into, float add) {
  const float sum = Bf16ToF32(into) + add;
  uint32_t bits;
  std::memcpy(&bits, &sum, 4);
  const uint32_t lower = bits & 0xffffu;
  uint32_t upper = bits >> 16;
  if (lower > 0x8000u || (lower == 0x8000u && (upper & 1u))) ++upper;
  return static_cast<uint16_t>(upper);
}

TEST(AddIntoBf16Test, RoundsEachSumToNearestEven) {
  // 1 + 2^-8 is exactly halfway between BF16 1 and 1 + 2^-7: ties go to
  // the even pattern (1); 1 + 3 * 2^-8 is halfway up to 1 + 2^-6 (even).
  std::vector<uint16_t> into = {F32ToBf16(1.0f), F32ToBf16(1.0f),
                                F32ToBf16(1.0f + 0x1p-7f), F32ToBf16(-2.0f)};
  const std::vector<float> add = {0x1p-8f, 0x1.8p-8f, 0x1p-8f, 0.5f};
  ASSERT_TRUE(AddIntoBf16(add.data(), into.data(), 4, nullptr).ok());
  EXPECT_EQ(Bf16ToF32(into[0]), 1.0f);
  EXPECT_EQ(Bf16ToF32(into[1]), 1.0f + 0x1p-7f);
  EXPECT_EQ(Bf16ToF32(into[2]), 1.0f + 0x1p-6f);
  EXPECT_EQ(Bf16ToF32(into[3]), -1.5f);
}

TEST(AddIntoBf16Test, SplitAcrossWorkersGivesTheSameBits) {
  constexpr int64_t kCount = (int64_t{1} << 17) + 37;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> start(kCount);
  std::vector<float> add(kCount);
  for (int64_t i = 0; i < kCount; ++i) {
    start[i] = F32ToBf16(normal(rng));
    add[i] = normal(rng) * 1e-2f;
  }
  add[5] = std::numeric_limits<float>::quiet_NaN();
  std::vector<uint16_t> inline_sum = start, split_sum = start;
  ASSERT_TRUE(AddIntoBf16(add.data(), inline_sum.data(), kCount, nullptr).ok());
  auto mesh = testing::MakeMesh(2);
  ASSERT_TRUE(
      AddIntoBf16(add.data(), split_sum.data(), kCount, mesh.get()).ok());
  EXPECT_EQ(inline_sum, split_sum);
  EXPECT_TRUE(std::isnan(Bf16ToF32(split_sum[5])));
  for (int64_t i = 0; i < kCount; ++i) {
    if (i == 5) continue;
    ASSERT_EQ(split_sum[i], ExpectedSum(start[i], add[i])) << i;
  }
}

TEST(AddIntoBf16Test, DrainAddsTheSameAndZeroesTheSums) {
  constexpr int64_t kCount = (int64_t{1} << 16) + 3;
  std::vector<uint16_t> start(kCount);
  std::vector<float> add(kCount);
  for (int64_t i = 0; i < kCount; ++i) {
    start[i] = F32ToBf16(0.25f * static_cast<float>(i % 97) - 3.0f);
    add[i] = 1e-3f * static_cast<float>(i % 89);
  }
  std::vector<uint16_t> added = start, drained = start;
  ASSERT_TRUE(AddIntoBf16(add.data(), added.data(), kCount, nullptr).ok());
  auto mesh = testing::MakeMesh(2);
  ASSERT_TRUE(
      DrainIntoBf16(add.data(), drained.data(), kCount, mesh.get()).ok());
  EXPECT_EQ(added, drained);
  EXPECT_EQ(std::count(add.begin(), add.end(), 0.0f), kCount);
}

TEST(AddIntoBf16Test, RefusesMissingBuffers) {
  std::vector<uint16_t> into(3);
  EXPECT_FALSE(AddIntoBf16(nullptr, into.data(), 3, nullptr).ok());
  EXPECT_TRUE(AddIntoBf16(nullptr, nullptr, 0, nullptr).ok());
}

}  // namespace
}  // namespace rlrt
