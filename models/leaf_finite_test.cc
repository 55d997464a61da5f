#include "models/leaf_finite.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <vector>

#include "models/dtype.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

void Put(ParamLeaves& leaves, size_t leaf, int64_t k, float value) {
  std::byte* p = leaves.data(leaf) + k * DTypeSize(leaves.spec(leaf).dtype);
  switch (leaves.spec(leaf).dtype) {
    case DType::kF32:
      std::memcpy(p, &value, 4);
      break;
    case DType::kBF16: {
      const uint16_t bits = F32ToBf16(value);
      std::memcpy(p, &bits, 2);
      break;
    }
    case DType::kF16: {
      const uint16_t bits = F32ToF16(value);
      std::memcpy(p, &bits, 2);
      break;
    }
  }
}

TEST(LeafFiniteTest, FindsTheFirstNanOrInfinityInEveryFloatFormat) {
  ParamLeaves leaves = testing::AllocateOrDie(testing::MixedSpecs());
  for (size_t i = 0; i < leaves.size(); ++i)
    std::memset(leaves.data(i), 0, leaves.bytes(i));
  // The largest finite values are finite.
  Put(leaves, 0, 1, std::numeric_limits<float>::max());
  Put(leaves, 4, 7, 3.0e38f);   // BF16 keeps the F32 exponent range.
  Put(leaves, 6, 2, 65504.0f);  // F16's largest.
  EXPECT_FALSE(FindNonFinite(leaves).has_value());

  const float kBad[] = {std::numeric_limits<float>::quiet_NaN(),
                        std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity()};
  const std::vector<std::pair<size_t, int64_t>> places = {
      {0, 14}, {2, 65536}, {3, 123456}, {4, 4096}, {6, 5}};
  for (float bad : kBad) {
    for (auto [leaf, element] : places) {
      ParamLeaves copy = testing::AllocateOrDie(testing::MixedSpecs());
      for (size_t i = 0; i < leaves.size(); ++i)
        std::memcpy(copy.data(i), leaves.data(i), leaves.bytes(i));
      Put(copy, leaf, element, bad);
      Put(copy, 6, 5, bad);  // A later one must not be reported first.
      const auto found = FindNonFinite(copy);
      ASSERT_TRUE(found.has_value()) << leaf << " " << element;
      EXPECT_EQ(found->leaf, leaf);
      EXPECT_EQ(found->element, element);
    }
  }
}

TEST(LeafFiniteTest, ALargeLeafIsScannedAcrossTheMeshAndStillReportsTheFirst) {
  auto mesh = testing::MakeMesh(3);
  ParamLeaves leaves = testing::AllocateOrDie(
      {{"small", {10}, DType::kF32}, {"large", {3, 1 << 20}, DType::kF32}});
  for (size_t i = 0; i < leaves.size(); ++i)
    std::memset(leaves.data(i), 0, leaves.bytes(i));
  EXPECT_FALSE(FindNonFinite(leaves, mesh.get()).has_value());
  Put(leaves, 1, 3 * (1 << 20) - 1, std::numeric_limits<float>::infinity());
  Put(leaves, 1, 2 * (1 << 20) + 5, std::numeric_limits<float>::quiet_NaN());
  const auto found = FindNonFinite(leaves, mesh.get());
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->leaf, 1u);
  EXPECT_EQ(found->element, 2 * (1 << 20) + 5);
}

}  // namespace
}  // namespace rlrt
