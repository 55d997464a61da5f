#include "trainer_bridge/update_builder.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "models/config/param_budget.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "models/test_util.h"
#include "sampler/update_apply.h"

namespace rlrt {
namespace {

using testing::AllocateOrDie;
using testing::MakeMesh;
using testing::MixedSpecs;
using testing::SameBytes;

TEST(UpdateBuilderTest, BuildsEveryFieldFromTheLeaves) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  ASSERT_TRUE(FillDummy(leaves, 4).ok());
  auto mesh = MakeMesh(2);
  proto::UpdateParams u;
  BuildOptions options;
  options.include_content_hash = true;
  options.flush_cache = true;
  ASSERT_TRUE(BuildUpdateParams(leaves, 17, options, mesh.get(), &u).ok());
  EXPECT_EQ(u.version(), 17u);
  EXPECT_EQ(u.structure_fingerprint(), leaves.fingerprint());
  EXPECT_EQ(u.expected_content_hash(), ContentHash(leaves));
  EXPECT_TRUE(u.flush_cache());
  EXPECT_FALSE(u.return_checksums());
  ASSERT_EQ(u.leaves_size(), 7);
  for (size_t i = 0; i < leaves.size(); ++i) {
    const proto::Leaf& leaf = u.leaves(static_cast<int>(i));
    EXPECT_EQ(leaf.name(), leaves.spec(i).name);
    EXPECT_EQ(std::vector<int64_t>(leaf.shape().begin(), leaf.shape().end()),
              leaves.spec(i).shape);
    EXPECT_EQ(leaf.data().size(), leaves.bytes(i));
    EXPECT_EQ(std::memcmp(leaf.data().data(), leaves.data(i), leaves.bytes(i)),
              0);
  }
  EXPECT_EQ(u.leaves(4).dtype(), proto::BF16);
  EXPECT_EQ(u.leaves(6).dtype(), proto::F16);
}

TEST(UpdateBuilderTest, TrainerToSamplerRoundTripInProcessAndSerialized) {
  const auto specs = LeafSpecsFor(*ConfigForParamBudget(4'000'000));
  ParamLeaves trainer = AllocateOrDie(specs);
  ParamLeaves sampler = AllocateOrDie(specs);
  auto actor = MakeMesh(1, "actor");
  auto rollout = MakeMesh(1, "rollout");
  ASSERT_TRUE(FillDummy(trainer, 7, actor.get()).ok());
  ASSERT_TRUE(FillDummy(sampler, 7, rollout.get()).ok());
  ASSERT_TRUE(Perturb(trainer, 1, 0.01, 3, actor.get()).ok());
  ASSERT_NE(ContentHash(trainer), ContentHash(sampler));

  proto::UpdateParams u;
  BuildOptions options;
  options.include_content_hash = true;
  ASSERT_TRUE(BuildUpdateParams(trainer, 1, options, actor.get(), &u).ok());
  ASSERT_TRUE(ApplyUpdateParams(u, sampler, rollout.get()).ok());
  EXPECT_TRUE(SameBytes(trainer, sampler));

  // A second step through the serialized form lands the same bytes.
  ASSERT_TRUE(Perturb(trainer, 2, 0.01, 1000, actor.get()).ok());
  ASSERT_TRUE(BuildUpdateParams(trainer, 2, options, actor.get(), &u).ok());
  const std::string wire = u.SerializeAsString();
  proto::UpdateParams parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(parsed, u));
  proto::UpdateParams scratch;
  ASSERT_TRUE(
      ApplySerializedUpdateParams(wire, &scratch, sampler, rollout.get()).ok());
  EXPECT_TRUE(SameBytes(trainer, sampler));
  EXPECT_EQ(sampler.version(), 2u);
}

TEST(UpdateBuilderTest, RebuildingReusesTheMessageBuffers) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  ASSERT_TRUE(FillDummy(leaves, 4).ok());
  proto::UpdateParams u;
  ASSERT_TRUE(BuildUpdateParams(leaves, 1, {}, nullptr, &u).ok());
  const char* big = u.leaves(3).data().data();
  ASSERT_TRUE(Perturb(leaves, 1, 0.5, 100).ok());
  ASSERT_TRUE(BuildUpdateParams(leaves, 2, {}, nullptr, &u).ok());
  EXPECT_EQ(u.leaves(3).data().data(), big);
  EXPECT_EQ(
      std::memcmp(u.leaves(3).data().data(), leaves.data(3), leaves.bytes(3)),
      0);
  EXPECT_FALSE(u.has_expected_content_hash());
}

TEST(UpdateBuilderTest, RebuildingFromAnotherStructureReplacesIt) {
  ParamLeaves first = AllocateOrDie(MixedSpecs());
  ParamLeaves second = AllocateOrDie({{"only.weight", {4, 4}, DType::kF32}});
  proto::UpdateParams u;
  ASSERT_TRUE(BuildUpdateParams(first, 1, {}, nullptr, &u).ok());
  ASSERT_TRUE(BuildUpdateParams(second, 2, {}, nullptr, &u).ok());
  ASSERT_EQ(u.leaves_size(), 1);
  EXPECT_EQ(u.leaves(0).name(), "only.weight");
  EXPECT_EQ(u.structure_fingerprint(), second.fingerprint());
  ParamLeaves target = AllocateOrDie({{"only.weight", {4, 4}, DType::kF32}});
  EXPECT_TRUE(ApplyUpdateParams(u, target, nullptr).ok());
}

}  // namespace
}  // namespace rlrt

namespace rlrt {
namespace {

// A diverged trainer's weights never leave it: NaN or infinity in any leaf
// (any float format) refuses the build, naming the leaf.
TEST(BuildUpdateParamsTest, RefusesNonFiniteWeights) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (const char* bad : {"nan", "inf"}) {
      ParamLeaves leaves = testing::AllocateOrDie(
          {{"a.weight", {7}, DType::kF32}, {"b.weight", {300}, dtype}});
      std::memset(leaves.data(0), 0, leaves.bytes(0));
      std::memset(leaves.data(1), 0, leaves.bytes(1));
      proto::UpdateParams out;
      ASSERT_TRUE(BuildUpdateParams(leaves, 1, {}, nullptr, &out).ok());
      // Exponent bits all ones; a non-zero mantissa makes it a NaN.
      std::byte* element = leaves.data(1) + 123 * DTypeSize(dtype);
      const bool nan = std::string(bad) == "nan";
      if (dtype == DType::kF32) {
        const uint32_t bits = 0x7f800000u | (nan ? 1u : 0u);
        std::memcpy(element, &bits, 4);
      } else {
        const uint16_t bits = dtype == DType::kBF16
                                  ? uint16_t(0x7f80u | (nan ? 1u : 0u))
                                  : uint16_t(0x7c00u | (nan ? 1u : 0u));
        std::memcpy(element, &bits, 2);
      }
      proto::UpdateParams refused;
      Status s = BuildUpdateParams(leaves, 2, {}, nullptr, &refused);
      ASSERT_FALSE(s.ok()) << DTypeName(dtype) << " " << bad;
      EXPECT_NE(s.message().find("'b.weight'"), std::string::npos) << s;
      EXPECT_NE(s.message().find("element 123"), std::string::npos) << s;
      EXPECT_EQ(refused.leaves_size(), 0);
      // The check can be switched off (e.g. to ship a diagnostic).
      BuildOptions off;
      off.refuse_non_finite = false;
      EXPECT_TRUE(BuildUpdateParams(leaves, 2, off, nullptr, &refused).ok());
    }
  }
}

}  // namespace
}  // namespace rlrt
