// The split float32 master: every value comes back bit for bit, the high
// half is the nearest BF16 value, and AdamW on a split master computes
// exactly what it computes on a plain float32 master.
#include "trainer_bridge/split_master.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "models/dtype.h"
#include "models/leaf_init.h"
#include "models/test_util.h"
#include "trainer_bridge/optimizer.h"

namespace rlrt {
namespace split_master_test {
namespace {

uint32_t BitsOf(float x) { return std::bit_cast<uint32_t>(x); }
float FromBits(uint32_t u) { return std::bit_cast<float>(u); }

// Every high half with low halves at and around the rounding boundary and
// some random ones: 65,536 x 10 values, all signs, exponents and specials.
TEST(SplitFloatTest, RoundTripsExactlyAndRoundsToNearest) {
  std::mt19937 rng(7);
  int64_t ties = 0, finite = 0;
  for (uint32_t high = 0; high <= 0xFFFF; ++high) {
    const uint32_t r = static_cast<uint32_t>(rng());
    for (uint32_t low : {0u, 1u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu, r & 0xFFFF,
                         r >> 16, (r >> 8) & 0xFFFF, (r * 2654435761u) >> 16}) {
      const float x = FromBits(high << 16 | low);
      const SplitF32 split = SplitFloat(x);
      const float back = JoinFloat(split.high, split.low);
      if (std::isnan(x)) {
        ASSERT_TRUE(std::isnan(back)) << std::hex << BitsOf(x);
        ASSERT_TRUE(std::isnan(Bf16ToF32(split.high)));
        ASSERT_EQ(std::signbit(back), std::signbit(x));
        continue;
      }
      ASSERT_EQ(BitsOf(back), BitsOf(x)) << std::hex << BitsOf(x);
      if (std::isinf(x)) {
        ASSERT_EQ(split.high, high);
        continue;
      }
      ++finite;
      ASSERT_EQ(split.high, testing::NearestBf16TiesAwayBits(x))
          << std::hex << BitsOf(x);
      // Round-to-nearest-even agrees except at exact ties.
      if (low == 0x8000) {
        ++ties;
      } else {
        ASSERT_EQ(split.high, F32ToBf16(x)) << std::hex << BitsOf(x);
      }
    }
  }
  EXPECT_GT(ties, 60000);
  EXPECT_GT(finite, 600000);
}

std::vector<LeafSpec> ComputeSpecs() {
  return {{"w", {300, 400}, DType::kBF16},
          {"norm", {7}, DType::kF32},
          {"big", {70000}, DType::kBF16}};
}

std::vector<LeafSpec> AllF32(std::vector<LeafSpec> specs) {
  for (LeafSpec& s : specs) s.dtype = DType::kF32;
  return specs;
}

ParamLeaves RandomF32Master(uint64_t seed) {
  ParamLeaves master = testing::AllocateOrDie(AllF32(ComputeSpecs()));
  EXPECT_TRUE(FillDummy(master, seed).ok());
  return master;
}

std::vector<uint32_t> BitsOfLeaves(const ParamLeaves& leaves) {
  std::vector<uint32_t> all;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const auto* p = reinterpret_cast<const uint32_t*>(leaves.data(i));
    all.insert(all.end(), p, p + leaves.bytes(i) / 4);
  }
  return all;
}

TEST(SplitMasterTest, StartsAsTheComputeCopyAndHoldsAnyMaster) {
  ParamLeaves compute = testing::AllocateOrDie(ComputeSpecs());
  ASSERT_TRUE(FillDummy(compute, 3).ok());
  auto split = SplitMaster::Create(&compute);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->master_specs(), AllF32(ComputeSpecs()));
  EXPECT_EQ(split->low(1), nullptr);
  auto mesh = testing::MakeMesh(3);

  // At first the master is the copy, widened.
  ParamLeaves out = testing::AllocateOrDie(AllF32(ComputeSpecs()));
  ASSERT_TRUE(split->CopyTo(out, mesh.get()).ok());
  for (size_t i = 0; i < out.size(); ++i) {
    for (int64_t k = 0; k < out.spec(i).NumElements(); ++k) {
      ASSERT_EQ(BitsOf(out.F32(i)[k]),
                BitsOf(LoadAsF32(compute.data(i), compute.spec(i).dtype, k)));
    }
  }

  // Any float32 master comes back bit for bit; the copy is its nearest BF16.
  const ParamLeaves master = RandomF32Master(11);
  ASSERT_TRUE(split->Assign(master, mesh.get()).ok());
  ASSERT_TRUE(split->CopyTo(out, nullptr).ok());
  EXPECT_EQ(BitsOfLeaves(out), BitsOfLeaves(master));
  for (size_t i : {0, 2}) {
    const auto* high = reinterpret_cast<const uint16_t*>(compute.data(i));
    for (int64_t k = 0; k < master.spec(i).NumElements(); ++k)
      ASSERT_EQ(high[k], testing::NearestBf16TiesAwayBits(master.F32(i)[k]))
          << i << " " << k;
  }
  EXPECT_EQ(BitsOf(compute.F32(1)[4]), BitsOf(master.F32(1)[4]));

  // The hash sees a change below BF16 resolution, and not the worker count.
  const uint64_t hash = split->ContentHash(mesh.get());
  EXPECT_EQ(split->ContentHash(nullptr), hash);
  ParamLeaves nudged = RandomF32Master(11);
  nudged.F32(2)[5] = std::nextafter(nudged.F32(2)[5], 10.0f);
  ASSERT_TRUE(split->Assign(nudged, nullptr).ok());
  EXPECT_NE(split->ContentHash(nullptr), hash);
}

TEST(SplitMasterTest, RefusesOtherStructuresAndChangesNothing) {
  ParamLeaves compute = testing::AllocateOrDie(ComputeSpecs());
  ASSERT_TRUE(FillDummy(compute, 3).ok());
  auto split = SplitMaster::Create(&compute);
  ASSERT_TRUE(split.ok());
  const uint64_t hash = split->ContentHash(nullptr);
  std::vector<LeafSpec> other = AllF32(ComputeSpecs());
  other[2].shape = {69999};
  ParamLeaves wrong = testing::AllocateOrDie(other);
  EXPECT_EQ(split->Assign(wrong, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(split->CopyTo(wrong, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(split->ContentHash(nullptr), hash);

  ParamLeaves f16 = testing::AllocateOrDie({{"h", {4}, DType::kF16}});
  EXPECT_EQ(SplitMaster::Create(&f16).status().code(),
            StatusCode::kInvalidArgument);
}

// The same AdamW steps (decay, clipping) on a plain float32 master and on
// a split one leave the same master bits, for any worker count.
TEST(SplitMasterTest, AdamWStepsMatchAPlainFloat32Master) {
  ParamLeaves plain = RandomF32Master(5);
  ParamLeaves compute = testing::AllocateOrDie(ComputeSpecs());
  auto split = SplitMaster::Create(&compute);
  ASSERT_TRUE(split.ok());
  ASSERT_TRUE(split->Assign(plain, nullptr).ok());
  AdamWOptions o;
  o.weight_decay = 0.1;
  o.max_grad_norm = 0.5;
  auto plain_opt = AdamW::Create(plain, o);
  auto split_opt = AdamW::Create(*split, o);
  ASSERT_TRUE(plain_opt.ok() && split_opt.ok());
  auto mesh = testing::MakeMesh(2);
  ParamLeaves grads = testing::AllocateOrDie(AllF32(ComputeSpecs()));
  for (int step = 0; step < 4; ++step) {
    ASSERT_TRUE(FillDummy(grads, 20 + step).ok());
    // A learning rate small enough that many updates stay below half a
    // BF16 step, where the low halves must carry them.
    auto a = plain_opt->Step(plain, grads, 1e-5, nullptr);
    auto b = split_opt->Step(*split, grads, 1e-5, mesh.get());
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->grad_norm, b->grad_norm);
  }
  ParamLeaves out = testing::AllocateOrDie(AllF32(ComputeSpecs()));
  ASSERT_TRUE(split->CopyTo(out, nullptr).ok());
  EXPECT_EQ(BitsOfLeaves(out), BitsOfLeaves(plain));
  // And the copy moved less often than the master did.
  const ParamLeaves start = RandomF32Master(5);
  int64_t master_moved = 0, copy_moved = 0;
  const auto* high = reinterpret_cast<const uint16_t*>(compute.data(0));
  for (int64_t k = 0; k < start.spec(0).NumElements(); ++k) {
    master_moved += plain.F32(0)[k] != start.F32(0)[k];
    copy_moved += high[k] != testing::NearestBf16TiesAwayBits(start.F32(0)[k]);
  }
  EXPECT_GT(master_moved, copy_moved);
  EXPECT_GT(copy_moved, 0);

  ParamLeaves wrong = testing::AllocateOrDie({{"w", {3}, DType::kBF16}});
  auto other = SplitMaster::Create(&wrong);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(split_opt->Step(*other, grads, 1e-4, nullptr).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace split_master_test
}  // namespace rlrt
