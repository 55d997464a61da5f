#include "models/leaf_init.h"

#include <gtest/gtest.h>

#include <cmath>

#include "models/leaf_checksum.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::AllocateOrDie;
using testing::MakeMesh;
using testing::MixedSpecs;
using testing::SameBytes;

struct Moments {
  double mean = 0;
  double stddev = 0;
};

Moments MomentsOf(std::span<const float> v) {
  double sum = 0, sq = 0;
  for (float x : v) {
    sum += x;
    sq += static_cast<double>(x) * x;
  }
  const double mean = sum / v.size();
  return {mean, std::sqrt(sq / v.size() - mean * mean)};
}

TEST(LeafInitTest, DummyIsDeterministicAndWorkerIndependent) {
  ParamLeaves a = AllocateOrDie(MixedSpecs());
  ParamLeaves b = AllocateOrDie(MixedSpecs());
  ASSERT_TRUE(FillDummy(a, 42).ok());
  auto mesh = MakeMesh(3);
  ASSERT_TRUE(FillDummy(b, 42, mesh.get()).ok());
  EXPECT_TRUE(SameBytes(a, b));
  ASSERT_TRUE(FillDummy(b, 43, mesh.get()).ok());
  EXPECT_FALSE(SameBytes(a, b));
}

TEST(LeafInitTest, DummyHasTheRequestedScale) {
  ParamLeaves leaves = AllocateOrDie({{"w", {1000, 1000}, DType::kF32}});
  ASSERT_TRUE(FillDummy(leaves, 1).ok());
  const Moments m = MomentsOf(leaves.F32(0));
  EXPECT_NEAR(m.mean, 0.0, 2e-4);
  EXPECT_NEAR(m.stddev, 0.02, 0.02 * 0.01);
  float max_abs = 0;
  for (float x : leaves.F32(0)) max_abs = std::max(max_abs, std::fabs(x));
  EXPECT_LE(max_abs, 0.02f * std::sqrt(3.0f));
}

TEST(LeafInitTest, RulesPickPerLeafInit) {
  ParamLeaves leaves = AllocateOrDie({{"model.norm.weight", {64}, DType::kBF16},
                                      {"w", {64, 64}, DType::kF32}});
  ASSERT_TRUE(FillDummy(leaves, 1, nullptr, [](const LeafSpec& s) {
                DummyInit r;
                if (s.name.find("norm") != std::string::npos) {
                  r.kind = DummyInit::Kind::kConstant;
                  r.value = 1.0f;
                } else {
                  r.stddev = 0.5f;
                }
                return r;
              }).ok());
  for (size_t i = 0; i < 64; ++i)
    EXPECT_EQ(LoadAsF32(leaves.data(0), DType::kBF16, i), 1.0f);
  EXPECT_NEAR(MomentsOf(leaves.F32(1)).stddev, 0.5, 0.03);
  EXPECT_FALSE(FillDummy(leaves, 1, nullptr, [](const LeafSpec&) {
                 DummyInit r;
                 r.stddev = -1;
                 return r;
               }).ok());
}

TEST(LeafInitTest, PerturbTouchesOnlyTheFirstLeavesWithTheRightScale) {
  std::vector<LeafSpec> specs = {{"a", {500, 400}, DType::kF32},
                                 {"b", {300, 300}, DType::kF32},
                                 {"c", {1000}, DType::kF32}};
  ParamLeaves before = AllocateOrDie(specs);
  ParamLeaves after = AllocateOrDie(specs);
  ASSERT_TRUE(FillDummy(before, 5).ok());
  ASSERT_TRUE(FillDummy(after, 5).ok());
  auto mesh = MakeMesh(2);
  ASSERT_TRUE(Perturb(after, 11, 0.1, 2, mesh.get()).ok());
  for (size_t leaf : {0u, 1u}) {
    std::vector<float> delta(after.F32(leaf).size());
    for (size_t i = 0; i < delta.size(); ++i) {
      delta[i] = after.F32(leaf)[i] - before.F32(leaf)[i];
    }
    const Moments m = MomentsOf(delta);
    EXPECT_NEAR(m.mean, 0.0, 0.002) << leaf;
    EXPECT_NEAR(m.stddev, 0.1, 0.002) << leaf;
    // Gaussian, not uniform: about 4.6% of samples lie beyond two sigma.
    size_t beyond = 0;
    for (float d : delta) beyond += std::fabs(d) > 0.2f;
    EXPECT_NEAR(static_cast<double>(beyond) / delta.size(), 0.0455, 0.005);
  }
  EXPECT_EQ(std::memcmp(after.data(2), before.data(2), after.bytes(2)), 0);

  // Same seed, inline: same result; all leaves when num_leaves is large.
  ParamLeaves again = AllocateOrDie(specs);
  ASSERT_TRUE(FillDummy(again, 5).ok());
  ASSERT_TRUE(Perturb(again, 11, 0.1, 2).ok());
  EXPECT_TRUE(SameBytes(again, after));
  ASSERT_TRUE(Perturb(again, 11, 0.1, 1000).ok());
  EXPECT_NE(std::memcmp(again.data(2), before.data(2), again.bytes(2)), 0);
}

TEST(LeafInitTest, PerturbRejectsBadArguments) {
  ParamLeaves leaves = AllocateOrDie({{"a", {10}, DType::kF32}});
  ASSERT_TRUE(FillDummy(leaves, 5).ok());
  const uint64_t hash = ContentHash(leaves);
  EXPECT_FALSE(Perturb(leaves, 1, 0.1, -1).ok());
  EXPECT_FALSE(Perturb(leaves, 1, -0.1, 1).ok());
  EXPECT_FALSE(Perturb(leaves, 1, std::nan(""), 1).ok());
  EXPECT_FALSE(Perturb(leaves, 1, INFINITY, 1).ok());
  EXPECT_EQ(ContentHash(leaves), hash);
  ASSERT_TRUE(Perturb(leaves, 1, 0.1, 0).ok());  // Zero leaves: a no-op.
  EXPECT_EQ(ContentHash(leaves), hash);
}

}  // namespace
}  // namespace rlrt
