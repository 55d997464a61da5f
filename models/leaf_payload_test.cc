#include "models/leaf_payload.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "models/leaf_init.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::AllocateOrDie;
using testing::MixedSpecs;

// The payload built the obvious way: every leaf's bytes appended in order.
std::vector<std::byte> Concatenate(const ParamLeaves& leaves) {
  std::vector<std::byte> out;
  for (size_t i = 0; i < leaves.size(); ++i)
    out.insert(out.end(), leaves.data(i), leaves.data(i) + leaves.bytes(i));
  return out;
}

TEST(LeafPayloadTest, AnyRangeSplitIntoSpansRebuildsTheConcatenation) {
  ParamLeaves src = AllocateOrDie(MixedSpecs());
  ASSERT_TRUE(FillDummy(src, 5).ok());
  const std::vector<std::byte> payload = Concatenate(src);
  ASSERT_EQ(payload.size(), src.total_bytes());
  // Ranges of several sizes, including ones that end inside a leaf and
  // ones smaller than one element.
  for (size_t step :
       {size_t{7}, size_t{1000}, size_t{4096 + 7}, payload.size()}) {
    ParamLeaves dst = AllocateOrDie(MixedSpecs());
    for (size_t begin = 0; begin < payload.size(); begin += step) {
      const size_t n = std::min(step, payload.size() - begin);
      size_t covered = 0;
      ASSERT_TRUE(ForEachPayloadSpan(
                      dst, begin, n,
                      [&](size_t leaf, size_t leaf_offset, size_t range_offset,
                          size_t size) {
                        EXPECT_EQ(range_offset, covered);
                        EXPECT_LE(leaf_offset + size, dst.bytes(leaf));
                        std::memcpy(dst.data(leaf) + leaf_offset,
                                    payload.data() + begin + range_offset,
                                    size);
                        covered += size;
                      })
                      .ok());
      EXPECT_EQ(covered, n);
    }
    EXPECT_TRUE(testing::SameBytes(src, dst)) << "step " << step;
  }
}

TEST(LeafPayloadTest, RangesPastTheEndAreRefusedWithoutACall) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  const size_t total = leaves.total_bytes();
  int calls = 0;
  auto count = [&](size_t, size_t, size_t, size_t) { ++calls; };
  EXPECT_EQ(ForEachPayloadSpan(leaves, total, 1, count).code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(ForEachPayloadSpan(leaves, 1, total, count).code(),
            StatusCode::kOutOfRange);
  // An offset near 2^64 must not wrap around into a valid range.
  EXPECT_EQ(ForEachPayloadSpan(leaves, SIZE_MAX - 2, 4, count).code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(ForEachPayloadSpan(leaves, total, 0, count).ok());
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace rlrt
