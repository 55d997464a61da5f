#include "models/param_leaves.h"

#include <gtest/gtest.h>

#include <cstring>

#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::AllocateOrDie;
using testing::MixedSpecs;

TEST(ParamLeavesTest, AllocatesAlignedZeroedLeavesInOrder) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  ASSERT_EQ(leaves.size(), 7u);
  size_t expected_total = 0;
  for (size_t i = 0; i < leaves.size(); ++i) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(leaves.data(i)) % kLeafAlignment, 0u);
    EXPECT_EQ(leaves.bytes(i), leaves.spec(i).NumBytes());
    EXPECT_EQ(leaves.byte_offsets()[i], expected_total);
    expected_total += leaves.bytes(i);
    for (size_t b = 0; b < leaves.bytes(i); ++b) {
      ASSERT_EQ(leaves.data(i)[b], std::byte{0});
    }
  }
  EXPECT_EQ(leaves.total_bytes(), expected_total);
  EXPECT_EQ(leaves.total_elements(), 15 + 65537 + 300000 + 4097 + 6);
  EXPECT_EQ(leaves.fingerprint(), StructureFingerprint(MixedSpecs()));
  EXPECT_EQ(leaves.version(), 0u);
}

TEST(ParamLeavesTest, LeavesDoNotOverlap) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  for (size_t i = 0; i < leaves.size(); ++i) {
    std::memset(leaves.data(i), static_cast<int>(i + 1), leaves.bytes(i));
  }
  for (size_t i = 0; i < leaves.size(); ++i) {
    for (size_t b = 0; b < leaves.bytes(i); ++b) {
      ASSERT_EQ(leaves.data(i)[b], std::byte(i + 1)) << i;
    }
  }
}

TEST(ParamLeavesTest, FindByName) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  ASSERT_TRUE(leaves.Find("c.weight").has_value());
  EXPECT_EQ(*leaves.Find("c.weight"), 3u);
  EXPECT_FALSE(leaves.Find("nope").has_value());
  EXPECT_EQ(leaves.F32(0).size(), 15u);
}

TEST(ParamLeavesTest, ChunksCoverEveryByteExactlyOnce) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  std::vector<std::vector<int>> seen(leaves.size());
  for (size_t i = 0; i < leaves.size(); ++i) seen[i].assign(leaves.bytes(i), 0);
  // Walk in irregular pieces to exercise both chunk() and ForEachChunk.
  const size_t n = leaves.num_chunks();
  for (size_t begin = 0; begin < n; begin += 3) {
    leaves.ForEachChunk(begin, std::min(n, begin + 3), [&](const LeafChunk& c) {
      ASSERT_LT(c.leaf, leaves.size());
      ASSERT_GT(c.size, 0u);
      ASSERT_LE(c.offset + c.size, leaves.bytes(c.leaf));
      EXPECT_EQ(c.offset, c.index_in_leaf * kLeafChunkBytes);
      for (size_t b = c.offset; b < c.offset + c.size; ++b) ++seen[c.leaf][b];
    });
  }
  for (size_t i = 0; i < leaves.size(); ++i) {
    for (int count : seen[i]) ASSERT_EQ(count, 1) << "leaf " << i;
  }
  // 1 + 0 + 2 + 5 + 1 + 0 + 1 chunks.
  EXPECT_EQ(n, 10u);
}

TEST(ParamLeavesTest, RejectsBadSpecs) {
  auto dup =
      ParamLeaves::Allocate({{"w", {2}, DType::kF32}, {"w", {3}, DType::kF32}});
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate leaf name 'w'"),
            std::string::npos);
  auto neg = ParamLeaves::Allocate({{"w", {2, -3}, DType::kF32}});
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.status().message().find("negative"), std::string::npos);
  auto empty_name = ParamLeaves::Allocate({{"", {2}, DType::kF32}});
  EXPECT_FALSE(empty_name.ok());
}

TEST(ParamLeavesTest, EmptyListIsValid) {
  ParamLeaves leaves = AllocateOrDie({});
  EXPECT_EQ(leaves.size(), 0u);
  EXPECT_EQ(leaves.num_chunks(), 0u);
  EXPECT_EQ(leaves.total_bytes(), 0u);
}

TEST(ParamLeavesTest, MoveKeepsBuffers) {
  ParamLeaves a = AllocateOrDie(MixedSpecs());
  std::byte* p = a.data(3);
  ParamLeaves b = std::move(a);
  EXPECT_EQ(b.data(3), p);
}

}  // namespace
}  // namespace rlrt
