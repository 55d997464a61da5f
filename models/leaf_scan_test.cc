#include "models/leaf_scan.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "models/leaf_finite.h"
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

// The copy finds non-finite values in the registers it loads: in every
// dtype, at the start of a chunk (before the destination is 64-byte
// aligned), in its body and in its tail, and it does not flag the largest
// finite values or negative ones. FirstNonFinite (scalar) is the truth.
TEST(LeafScanTest, TheCopyFindsNonFiniteValuesWhereverTheyAre) {
  struct Case {
    DType dtype;
    std::vector<uint32_t> bad;  // Inf, -Inf, NaN bit patterns.
    uint32_t largest_finite;
  };
  const Case cases[] = {
      {DType::kF32, {0x7f800000u, 0xff800000u, 0x7fc00001u}, 0x7f7fffffu},
      {DType::kBF16, {0x7f80, 0xff80, 0x7fc1}, 0x7f7f},
      {DType::kF16, {0x7c00, 0xfc00, 0x7e01}, 0x7bff},
  };
  const int64_t count = 1000;  // 2 or 4 KB: a head, a body and a tail.
  for (const Case& c : cases) {
    const size_t width = DTypeSize(c.dtype);
    ParamLeaves leaves = AllocateOrDie({LeafSpec{"x", {count}, c.dtype}});
    // Finite values at the edge of the range, both signs.
    for (int64_t k = 0; k < count; ++k) {
      const uint32_t bits =
          c.largest_finite |
          (k % 2 == 0 ? 0u : (width == 4 ? 0x80000000u : 0x8000u));
      std::memcpy(leaves.data(0) + k * width, &bits, width);
    }
    // A destination 16 bytes past a 64-byte boundary: a 48-byte head.
    std::vector<std::byte> buffer(count * width + 128);
    std::byte* base =
        buffer.data() + (64 - reinterpret_cast<uintptr_t>(buffer.data()) % 64);
    std::byte* dst = base + 16;
    auto copy = [&] {
      return CopyAndScanLeaves(
          leaves, [&](size_t) { return leaves.data(0); },
          [&](size_t) { return dst; }, {.hash = false, .find_non_finite = true},
          nullptr);
    };
    StatusOr<LeafScan> clean = copy();
    ASSERT_TRUE(clean.ok());
    EXPECT_FALSE(clean->non_finite) << DTypeName(c.dtype);
    EXPECT_EQ(std::memcmp(dst, leaves.data(0), count * width), 0);
    for (int64_t at : {int64_t{0}, int64_t{5}, int64_t{500}, count - 1}) {
      for (uint32_t bad : c.bad) {
        std::vector<std::byte> saved(width);
        std::memcpy(saved.data(), leaves.data(0) + at * width, width);
        std::memcpy(leaves.data(0) + at * width, &bad, width);
        ASSERT_EQ(FirstNonFinite(c.dtype, leaves.data(0), count), at);
        StatusOr<LeafScan> scan = copy();
        ASSERT_TRUE(scan.ok());
        ASSERT_TRUE(scan->non_finite)
            << DTypeName(c.dtype) << " at " << at << " bits " << bad;
        EXPECT_EQ(scan->non_finite->element, at);
        EXPECT_EQ(std::memcmp(dst, leaves.data(0), count * width), 0);
        std::memcpy(leaves.data(0) + at * width, saved.data(), width);
      }
    }
  }
}

}  // namespace
}  // namespace rlrt
