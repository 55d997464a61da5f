#include "models/leaf_scan.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "models/leaf_init.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::AllocateOrDie;
using testing::MixedSpecs;

// The fused pass must agree with the separate ones it replaces, for any
// number of workers, in place and while copying.
TEST(LeafScanTest, MatchesContentHashAndFindNonFinite) {
  ParamLeaves source = AllocateOrDie(MixedSpecs());
  ASSERT_TRUE(FillDummy(source, 3).ok());
  const uint64_t want = ContentHash(source);
  for (int workers : {0, 1, 2, 3}) {
    std::unique_ptr<Mesh> mesh =
        workers == 0 ? nullptr : testing::MakeMesh(workers);
    StatusOr<LeafScan> scan = ScanLeaves(
        source, [&](size_t i) { return source.data(i); }, {}, mesh.get());
    ASSERT_TRUE(scan.ok()) << scan.status();
    EXPECT_EQ(scan->content_hash, want) << workers;
    EXPECT_FALSE(scan->non_finite) << workers;

    ParamLeaves copy = AllocateOrDie(MixedSpecs());
    scan = CopyAndScanLeaves(
        source, [&](size_t i) { return source.data(i); },
        [&](size_t i) { return copy.data(i); }, {}, mesh.get());
    ASSERT_TRUE(scan.ok()) << scan.status();
    EXPECT_EQ(scan->content_hash, want) << workers;
    EXPECT_EQ(ContentHash(copy), want) << workers;
  }
}

// With non-finite values in several chunks (and so, with several workers,
// in several workers' ranges), the first in leaf and element order is
// reported, as FindNonFinite reports it.
TEST(LeafScanTest, ReportsTheFirstNonFiniteValue) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  ASSERT_TRUE(FillDummy(leaves, 4).ok());
  const uint32_t inf = 0x7f800000u, nan = 0x7fc00001u;
  // c.weight holds 300k floats, several chunks; b.weight comes before it.
  std::memcpy(leaves.data(3) + 4 * 250'000, &inf, 4);
  std::memcpy(leaves.data(3) + 4 * 70'000, &nan, 4);
  std::memcpy(leaves.data(2) + 4 * 65'536, &nan, 4);  // b's last element.
  const std::optional<NonFiniteElement> want = FindNonFinite(leaves);
  ASSERT_TRUE(want);
  ASSERT_EQ(want->leaf, 2u);
  ASSERT_EQ(want->element, 65'536);
  for (int workers : {0, 2, 3}) {
    std::unique_ptr<Mesh> mesh =
        workers == 0 ? nullptr : testing::MakeMesh(workers);
    ParamLeaves copy = AllocateOrDie(MixedSpecs());
    StatusOr<LeafScan> scan = CopyAndScanLeaves(
        leaves, [&](size_t i) { return leaves.data(i); },
        [&](size_t i) { return copy.data(i); }, {}, mesh.get());
    ASSERT_TRUE(scan.ok());
    ASSERT_TRUE(scan->non_finite) << workers;
    EXPECT_EQ(scan->non_finite->leaf, 2u) << workers;
    EXPECT_EQ(scan->non_finite->element, 65'536) << workers;
    // Everything is copied even so.
    EXPECT_EQ(ContentHash(copy), ContentHash(leaves)) << workers;
  }
  // Only in c: the earlier of its two.
  std::memset(leaves.data(2) + 4 * 65'536, 0, 4);
  StatusOr<LeafScan> scan = ScanLeaves(
      leaves, [&](size_t i) { return leaves.data(i); },
      {.hash = false, .find_non_finite = true}, testing::MakeMesh(3).get());
  ASSERT_TRUE(scan.ok());
  ASSERT_TRUE(scan->non_finite);
  EXPECT_EQ(scan->non_finite->leaf, 3u);
  EXPECT_EQ(scan->non_finite->element, 70'000);
}

}  // namespace
}  // namespace rlrt
