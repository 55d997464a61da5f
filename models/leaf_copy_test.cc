#include "models/leaf_copy.h"

#include <gtest/gtest.h>

#include "models/leaf_init.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::AllocateOrDie;
using testing::MakeMesh;
using testing::MixedSpecs;
using testing::SameBytes;

TEST(LeafCopyTest, CopiesEveryByteForAnyWorkerCount) {
  ParamLeaves src = AllocateOrDie(MixedSpecs());
  ASSERT_TRUE(FillDummy(src, 3).ok());
  for (int workers : {0, 1, 2, 3, 7}) {
    ParamLeaves dst = AllocateOrDie(MixedSpecs());
    auto mesh = workers > 0 ? MakeMesh(workers) : nullptr;
    ASSERT_TRUE(CopyIntoLeaves(
                    dst,
                    [&](size_t i) -> const std::byte* { return src.data(i); },
                    mesh.get())
                    .ok());
    EXPECT_TRUE(SameBytes(src, dst)) << workers;
  }
}

TEST(LeafCopyTest, TinyListsOnManyWorkers) {
  // Fewer bytes than workers: most workers get empty ranges.
  std::vector<LeafSpec> specs = {{"a", {1}, DType::kF32},
                                 {"b", {1}, DType::kF16}};
  ParamLeaves src = AllocateOrDie(specs);
  src.F32(0)[0] = 3.5f;
  std::memset(src.data(1), 0x7b, 2);
  ParamLeaves dst = AllocateOrDie(specs);
  auto mesh = MakeMesh(8);
  ASSERT_TRUE(CopyIntoLeaves(
                  dst,
                  [&](size_t i) -> const std::byte* { return src.data(i); },
                  mesh.get())
                  .ok());
  EXPECT_TRUE(SameBytes(src, dst));
}

}  // namespace
}  // namespace rlrt
