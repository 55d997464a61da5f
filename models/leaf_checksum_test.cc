#include "models/leaf_checksum.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::AllocateOrDie;
using testing::MakeMesh;
using testing::MixedSpecs;

// Fills every leaf with small integers (exact in every dtype), so the exact
// total is known independently of any summation order.
double FillWithIntegers(ParamLeaves& leaves, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-100, 100);
  double exact = 0;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const DType dtype = leaves.spec(i).dtype;
    const size_t n = leaves.bytes(i) / DTypeSize(dtype);
    for (size_t e = 0; e < n; ++e) {
      const int v = dist(rng);
      StoreFromF32(leaves.data(i), dtype, e, static_cast<float>(v));
      exact += v;
    }
  }
  return exact;
}

TEST(LeafChecksumTest, Float64SumIsExactForIntegers) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  const double exact = FillWithIntegers(leaves, 1);
  EXPECT_EQ(ComputeChecksums(leaves).float64_sum, exact);
}

TEST(LeafChecksumTest, Float64SumMatchesNaiveLongDoubleSum) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  long double naive = 0;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const DType dtype = leaves.spec(i).dtype;
    const size_t n = leaves.bytes(i) / DTypeSize(dtype);
    for (size_t e = 0; e < n; ++e) {
      StoreFromF32(leaves.data(i), dtype, e, dist(rng));
      naive += LoadAsF32(leaves.data(i), dtype, e);
    }
  }
  EXPECT_NEAR(ComputeChecksums(leaves).float64_sum, static_cast<double>(naive),
              1e-9);
}

TEST(LeafChecksumTest, ResultsDoNotDependOnWorkerCount) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (size_t i = 0; i < leaves.size(); ++i) {
    const DType dtype = leaves.spec(i).dtype;
    for (size_t e = 0; e < leaves.bytes(i) / DTypeSize(dtype); ++e) {
      StoreFromF32(leaves.data(i), dtype, e, dist(rng));
    }
  }
  const LeafChecksums inline_result = ComputeChecksums(leaves);
  for (int workers : {1, 2, 3, 8}) {
    auto mesh = MakeMesh(workers);
    const LeafChecksums r = ComputeChecksums(leaves, mesh.get());
    // Bitwise equal, not merely close.
    EXPECT_EQ(std::memcmp(&r.float64_sum, &inline_result.float64_sum, 8), 0)
        << workers;
    EXPECT_EQ(r.content_hash, inline_result.content_hash) << workers;
    EXPECT_EQ(ContentHash(leaves, mesh.get()), inline_result.content_hash);
  }
}

TEST(LeafChecksumTest, HashSeesEveryBitAndPosition) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  FillWithIntegers(leaves, 5);
  const uint64_t base = ContentHash(leaves);
  ParamLeaves same = AllocateOrDie(MixedSpecs());
  FillWithIntegers(same, 5);
  EXPECT_EQ(ContentHash(same), base);

  // One bit anywhere changes the hash.
  for (size_t leaf : {0u, 2u, 3u, 4u, 6u}) {
    for (size_t byte :
         {size_t{0}, leaves.bytes(leaf) / 2, leaves.bytes(leaf) - 1}) {
      leaves.data(leaf)[byte] ^= std::byte{0x10};
      EXPECT_NE(ContentHash(leaves), base) << leaf << " " << byte;
      leaves.data(leaf)[byte] ^= std::byte{0x10};
    }
  }
  EXPECT_EQ(ContentHash(leaves), base);
}

TEST(LeafChecksumTest, HashSeesSwappedChunksAndLeaves) {
  // Two leaves of equal shape with exchanged contents must hash differently,
  // and so must two chunks of one leaf exchanged.
  ParamLeaves a = AllocateOrDie(
      {{"x", {131072}, DType::kF32}, {"y", {131072}, DType::kF32}});
  for (size_t i = 0; i < 131072; ++i) {
    a.F32(0)[i] = static_cast<float>(i);
    a.F32(1)[i] = -static_cast<float>(i);
  }
  const uint64_t base = ContentHash(a);
  std::swap_ranges(a.F32(0).begin(), a.F32(0).end(), a.F32(1).begin());
  EXPECT_NE(ContentHash(a), base);
  std::swap_ranges(a.F32(0).begin(), a.F32(0).end(), a.F32(1).begin());
  std::swap_ranges(a.F32(0).begin(), a.F32(0).begin() + 65536,
                   a.F32(0).begin() + 65536);
  EXPECT_NE(ContentHash(a), base);
}

TEST(LeafChecksumTest, ForeignPayloadHashesLikeTheSameLeaves) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  FillWithIntegers(leaves, 9);
  std::vector<std::vector<std::byte>> copies;
  for (size_t i = 0; i < leaves.size(); ++i) {
    copies.emplace_back(leaves.data(i), leaves.data(i) + leaves.bytes(i));
  }
  const LeafChecksums own = ComputeChecksums(leaves);
  const LeafChecksums foreign = ComputeChecksums(
      leaves, [&](size_t i) -> const std::byte* { return copies[i].data(); },
      nullptr);
  EXPECT_EQ(own.content_hash, foreign.content_hash);
  EXPECT_EQ(own.float64_sum, foreign.float64_sum);
}

}  // namespace
}  // namespace rlrt
