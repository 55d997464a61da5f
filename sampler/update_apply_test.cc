#include "sampler/update_apply.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>
#include <tuple>

#include "models/leaf_init.h"
#include "models/test_util.h"
#include "sampler/update_test_util.h"

namespace rlrt {
namespace {

using testing::AllocateOrDie;
using testing::MakeMesh;
using testing::MixedSpecs;
using testing::SameBytes;

proto::UpdateParams HandBuilt(const ParamLeaves& src, uint64_t version) {
  return testing::HandBuiltUpdate(src, version);
}

class UpdateApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(FillDummy(source_, 1).ok());
    ASSERT_TRUE(FillDummy(target_, 2).ok());
    target_.set_version(3);
    target_hash_ = ContentHash(target_);
  }

  // Expects `update` to be refused with `code` and a message containing
  // `fragment`, leaving the target untouched.
  void ExpectRefused(const proto::UpdateParams& update, StatusCode code,
                     const std::string& fragment) {
    StatusOr<ApplyReport> r = ApplyUpdateParams(update, target_, mesh_.get());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status();
    EXPECT_NE(r.status().message().find(fragment), std::string::npos)
        << "'" << fragment << "' not in: " << r.status().message();
    EXPECT_EQ(ContentHash(target_), target_hash_);
    EXPECT_EQ(target_.version(), 3u);
  }

  ParamLeaves source_ = AllocateOrDie(MixedSpecs());
  ParamLeaves target_ = AllocateOrDie(MixedSpecs());
  uint64_t target_hash_ = 0;
  std::unique_ptr<Mesh> mesh_ = MakeMesh(2);
};

TEST_F(UpdateApplyTest, AppliesEveryLeafInPlace) {
  std::vector<const std::byte*> before;
  for (size_t i = 0; i < target_.size(); ++i) before.push_back(target_.data(i));
  StatusOr<ApplyReport> r =
      ApplyUpdateParams(HandBuilt(source_, 4), target_, mesh_.get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(SameBytes(source_, target_));
  EXPECT_EQ(target_.version(), 4u);
  EXPECT_EQ(r->version, 4u);
  EXPECT_EQ(r->bytes_copied, target_.total_bytes());
  EXPECT_FALSE(r->before.has_value());
  for (size_t i = 0; i < target_.size(); ++i)
    EXPECT_EQ(target_.data(i), before[i]);
}

TEST_F(UpdateApplyTest, ReportsChecksumsWhenAsked) {
  const LeafChecksums old_sums = ComputeChecksums(target_);
  proto::UpdateParams u = HandBuilt(source_, 9);
  u.set_return_checksums(true);
  u.set_expected_content_hash(ContentHash(source_));
  StatusOr<ApplyReport> r = ApplyUpdateParams(u, target_, mesh_.get());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->before && r->after);
  EXPECT_EQ(r->before->content_hash, old_sums.content_hash);
  EXPECT_EQ(r->before->float64_sum, old_sums.float64_sum);
  const LeafChecksums source_sums = ComputeChecksums(source_);
  EXPECT_EQ(r->after->content_hash, source_sums.content_hash);
  EXPECT_EQ(r->after->float64_sum, source_sums.float64_sum);

  proto::UpdateParamsReply reply;
  FillUpdateParamsReply(r, target_, &reply);
  EXPECT_TRUE(reply.ok());
  EXPECT_EQ(reply.version(), 9u);
  EXPECT_EQ(reply.after().content_hash(), source_sums.content_hash);
}

TEST_F(UpdateApplyTest, WorkerCountDoesNotChangeTheResult) {
  for (int workers : {1, 3, 5}) {
    ParamLeaves t = AllocateOrDie(MixedSpecs());
    auto mesh = MakeMesh(workers);
    ASSERT_TRUE(ApplyUpdateParams(HandBuilt(source_, 1), t, mesh.get()).ok());
    EXPECT_TRUE(SameBytes(source_, t)) << workers;
  }
}

TEST_F(UpdateApplyTest, RefusesStaleVersions) {
  ExpectRefused(HandBuilt(source_, 3), StatusCode::kFailedPrecondition,
                "version 3 is not newer than the version in force (3)");
  ExpectRefused(HandBuilt(source_, 1), StatusCode::kFailedPrecondition,
                "not newer");
}

TEST_F(UpdateApplyTest, RefusesMissingAndExtraLeaves) {
  proto::UpdateParams fewer = HandBuilt(source_, 4);
  fewer.mutable_leaves()->RemoveLast();
  ExpectRefused(fewer, StatusCode::kInvalidArgument,
                "missing leaf 6 'f.weight'");
  proto::UpdateParams more = HandBuilt(source_, 4);
  *more.add_leaves() = more.leaves(0);
  more.mutable_leaves(7)->set_name("g.weight");
  ExpectRefused(more, StatusCode::kInvalidArgument, "extra leaf 7 'g.weight'");
}

TEST_F(UpdateApplyTest, RefusesWrongNamesAndOrder) {
  proto::UpdateParams renamed = HandBuilt(source_, 4);
  renamed.mutable_leaves(3)->set_name("c.bias");
  ExpectRefused(renamed, StatusCode::kInvalidArgument,
                "leaf 3 'c.bias': expected leaf 'c.weight'");
  proto::UpdateParams swapped = HandBuilt(source_, 4);
  swapped.mutable_leaves()->SwapElements(2, 3);
  ExpectRefused(swapped, StatusCode::kInvalidArgument,
                "leaf 2 'c.weight': expected leaf 'b.weight'");
}

TEST_F(UpdateApplyTest, RefusesWrongShapesDtypesAndLengths) {
  proto::UpdateParams reshaped = HandBuilt(source_, 4);
  reshaped.mutable_leaves(3)->set_shape(0, 1000);
  reshaped.mutable_leaves(3)->set_shape(1, 300);
  ExpectRefused(reshaped, StatusCode::kInvalidArgument,
                "leaf 3 'c.weight': shape [1000, 300] != expected [300, 1000]");
  proto::UpdateParams rank = HandBuilt(source_, 4);
  rank.mutable_leaves(0)->add_shape(1);
  ExpectRefused(rank, StatusCode::kInvalidArgument,
                "leaf 0 'a.weight': shape [3, 5, 1]");
  proto::UpdateParams retyped = HandBuilt(source_, 4);
  retyped.mutable_leaves(4)->set_dtype(proto::F16);
  ExpectRefused(retyped, StatusCode::kInvalidArgument,
                "leaf 4 'd.weight': dtype F16 != expected BF16");
  proto::UpdateParams unspecified = HandBuilt(source_, 4);
  unspecified.mutable_leaves(0)->set_dtype(proto::DTYPE_UNSPECIFIED);
  ExpectRefused(unspecified, StatusCode::kInvalidArgument, "leaf 0 'a.weight'");
  proto::UpdateParams unknown = HandBuilt(source_, 4);
  unknown.mutable_leaves(0)->set_dtype(static_cast<proto::DType>(99));
  ExpectRefused(unknown, StatusCode::kInvalidArgument,
                "unknown or unspecified dtype 99");
  proto::UpdateParams cut = HandBuilt(source_, 4);
  cut.mutable_leaves(3)->mutable_data()->resize(1000);
  ExpectRefused(cut, StatusCode::kInvalidArgument,
                "leaf 3 'c.weight': 1000 bytes of data, expected 1200000");
  proto::UpdateParams longer = HandBuilt(source_, 4);
  longer.mutable_leaves(6)->mutable_data()->push_back('x');
  ExpectRefused(longer, StatusCode::kInvalidArgument,
                "leaf 6 'f.weight': 13 bytes");
}

TEST_F(UpdateApplyTest, RefusesAWrongFingerprint) {
  proto::UpdateParams u = HandBuilt(source_, 4);
  u.set_structure_fingerprint(u.structure_fingerprint() ^ 1);
  ExpectRefused(u, StatusCode::kInvalidArgument, "structure fingerprint");
}

TEST_F(UpdateApplyTest, RefusesAPayloadThatDoesNotMatchItsHash) {
  proto::UpdateParams u = HandBuilt(source_, 4);
  u.set_expected_content_hash(ContentHash(source_));
  (*u.mutable_leaves(3)->mutable_data())[123456] ^= 0x01;
  ExpectRefused(u, StatusCode::kDataLoss, "payload content hash");
  proto::UpdateParams wrong = HandBuilt(source_, 4);
  wrong.set_expected_content_hash(12345);
  ExpectRefused(wrong, StatusCode::kDataLoss, "!= expected 0x0000000000003039");
}

// NaN or infinity anywhere in the payload (F32, BF16 or F16 leaves, any
// position) is refused before a byte is written, naming the leaf.
TEST_F(UpdateApplyTest, RefusesNonFiniteWeights) {
  // Leaf, element, and the little-endian bits of +infinity and of a
  // negative NaN in the leaf's format.
  struct Case {
    int leaf;
    size_t element;
    std::vector<uint32_t> bad_bits;
    const char* name;
  };
  const std::vector<Case> cases = {
      {0, 14, {0x7f800000u, 0xffc00000u}, "'a.weight'"},      // F32
      {3, 299999, {0x7f800000u, 0xffc00000u}, "'c.weight'"},  // F32
      {4, 4096, {0x7f80u, 0xffc0u}, "'d.weight'"},            // BF16
      {6, 5, {0x7c00u, 0xfe00u}, "'f.weight'"},               // F16
  };
  for (const Case& c : cases) {
    const size_t width = DTypeSize(source_.spec(c.leaf).dtype);
    for (const uint32_t bits : c.bad_bits) {
      proto::UpdateParams u = HandBuilt(source_, 4);
      std::string& data = *u.mutable_leaves(c.leaf)->mutable_data();
      std::memcpy(data.data() + c.element * width, &bits, width);
      ExpectRefused(u, StatusCode::kInvalidArgument, c.name);
      ExpectRefused(u, StatusCode::kInvalidArgument,
                    "non-finite value (NaN or infinity) at element " +
                        std::to_string(c.element));
    }
  }
  // The same for weights already in memory (a reload).
  ParamLeaves bad = AllocateOrDie(MixedSpecs());
  ASSERT_TRUE(FillDummy(bad, 1).ok());
  const float inf = std::numeric_limits<float>::infinity();
  std::memcpy(bad.data(3) + 4 * 777, &inf, 4);
  StatusOr<ApplyReport> r = ApplyLeaves(bad, 4, target_, mesh_.get());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'c.weight'"), std::string::npos);
  EXPECT_NE(r.status().message().find("element 777"), std::string::npos);
  EXPECT_EQ(ContentHash(target_), target_hash_);
}

// Versions that leave no room for a later update are refused.
TEST_F(UpdateApplyTest, RefusesVersionsPastTheBound) {
  ExpectRefused(HandBuilt(source_, ~uint64_t{0}), StatusCode::kInvalidArgument,
                "exceeds the largest allowed");
  ExpectRefused(HandBuilt(source_, kMaxWeightVersion + 1),
                StatusCode::kInvalidArgument, "2^63 - 1");
  StatusOr<ApplyReport> r =
      ApplyLeaves(source_, ~uint64_t{0}, target_, mesh_.get());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(target_.version(), 3u);
  ASSERT_TRUE(ApplyUpdateParams(HandBuilt(source_, kMaxWeightVersion), target_,
                                mesh_.get())
                  .ok());
  EXPECT_EQ(target_.version(), kMaxWeightVersion);
}

TEST_F(UpdateApplyTest, SerializedRoundTrip) {
  proto::UpdateParams u = HandBuilt(source_, 4);
  u.set_expected_content_hash(ContentHash(source_));
  const std::string wire = u.SerializeAsString();
  proto::UpdateParams scratch;
  StatusOr<ApplyReport> r =
      ApplySerializedUpdateParams(wire, &scratch, target_, mesh_.get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(SameBytes(source_, target_));
}

TEST_F(UpdateApplyTest, TruncatedAndGarbageMessagesChangeNothing) {
  proto::UpdateParams u = HandBuilt(source_, 4);
  const std::string wire = u.SerializeAsString();
  proto::UpdateParams scratch;
  // Every cut inside the small leaves and the header, and a spread of cuts
  // through the big one.
  std::vector<size_t> cuts;
  for (size_t c = 0; c < 400; ++c) cuts.push_back(c);
  for (size_t c = 400; c < wire.size(); c += 9973) cuts.push_back(c);
  cuts.push_back(wire.size() - 1);
  for (size_t cut : cuts) {
    StatusOr<ApplyReport> r = ApplySerializedUpdateParams(
        std::string_view(wire).substr(0, cut), &scratch, target_, mesh_.get());
    ASSERT_FALSE(r.ok()) << "cut at " << cut;
  }
  std::mt19937 rng(1);
  for (int trial = 0; trial < 200; ++trial) {
    std::string garbage(rng() % 512, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    StatusOr<ApplyReport> r =
        ApplySerializedUpdateParams(garbage, &scratch, target_, mesh_.get());
    ASSERT_FALSE(r.ok());
  }
  EXPECT_EQ(ContentHash(target_), target_hash_);
  EXPECT_EQ(target_.version(), 3u);
}

// A prechecked payload (WeightSync's: hashed and checked by its builder) is
// not read again before the copy, but everything else still is; and the
// hash of what was written still catches a payload that changed under the
// message.
TEST_F(UpdateApplyTest, PrecheckedPayloadSkipsOnlyThePreCopyScan) {
  const ApplyOptions prechecked{.payload_prechecked = true};
  proto::UpdateParams u = HandBuilt(source_, 4);
  u.set_expected_content_hash(ContentHash(source_));
  StatusOr<ApplyReport> r =
      ApplyUpdateParams(u, target_, mesh_.get(), prechecked);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(SameBytes(source_, target_));
  EXPECT_EQ(r->content_hash, ContentHash(source_));
  EXPECT_EQ(target_.version(), 4u);

  // Structure and version are still checked before any write.
  ASSERT_TRUE(FillDummy(target_, 2).ok());
  target_.set_version(3);
  u.set_version(3);
  StatusOr<ApplyReport> old =
      ApplyUpdateParams(u, target_, mesh_.get(), prechecked);
  EXPECT_EQ(old.status().code(), StatusCode::kFailedPrecondition);
  u.set_version(5);
  u.mutable_leaves(2)->mutable_data()->resize(8);
  EXPECT_EQ(
      ApplyUpdateParams(u, target_, mesh_.get(), prechecked).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(ContentHash(target_), target_hash_);

  // A payload that no longer matches its hash: refused whole without the
  // option; with it, detected after the copy and the version kept.
  u = HandBuilt(source_, 5);
  u.set_expected_content_hash(ContentHash(source_));
  (*u.mutable_leaves(3)->mutable_data())[5] ^= 1;
  EXPECT_EQ(ApplyUpdateParams(u, target_, mesh_.get()).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(ContentHash(target_), target_hash_);
  StatusOr<ApplyReport> bad =
      ApplyUpdateParams(u, target_, mesh_.get(), prechecked);
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal) << bad.status();
  EXPECT_EQ(target_.version(), 3u);
  // Without a hash in the message the option is ignored: a NaN is refused
  // before the copy as always.
  u = HandBuilt(source_, 6);
  reinterpret_cast<float*>(u.mutable_leaves(0)->mutable_data()->data())[1] =
      std::numeric_limits<float>::quiet_NaN();
  ASSERT_TRUE(FillDummy(target_, 2).ok());
  EXPECT_EQ(
      ApplyUpdateParams(u, target_, mesh_.get(), prechecked).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(ContentHash(target_), target_hash_);
}

// Leaves handed over in memory with the hash they must have (WeightSync's
// path): checked before any write unless prechecked, and the hash of what
// was written reported either way, or the version kept if it differs.
TEST_F(UpdateApplyTest, LeavesWithAnExpectedHash) {
  const uint64_t source_hash = ContentHash(source_);
  StatusOr<ApplyReport> wrong =
      ApplyLeaves(source_, 4, target_, mesh_.get(), VersionRule::kNewer,
                  {.expected_content_hash = source_hash ^ 1});
  EXPECT_EQ(wrong.status().code(), StatusCode::kDataLoss) << wrong.status();
  EXPECT_EQ(ContentHash(target_), target_hash_);
  EXPECT_EQ(target_.version(), 3u);

  StatusOr<ApplyReport> r =
      ApplyLeaves(source_, 4, target_, mesh_.get(), VersionRule::kNewer,
                  {.expected_content_hash = source_hash});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(SameBytes(source_, target_));
  EXPECT_EQ(r->content_hash, source_hash);
  EXPECT_EQ(target_.version(), 4u);

  // Prechecked, the source is trusted until the copy: a hash that does not
  // match what was written is caught there, and the version stays.
  StatusOr<ApplyReport> changed = ApplyLeaves(
      source_, 5, target_, mesh_.get(), VersionRule::kNewer,
      {.payload_prechecked = true, .expected_content_hash = source_hash ^ 1});
  EXPECT_EQ(changed.status().code(), StatusCode::kInternal) << changed.status();
  EXPECT_EQ(target_.version(), 4u);
  // Without a hash nothing is hashed, as before.
  StatusOr<ApplyReport> plain = ApplyLeaves(source_, 6, target_, mesh_.get());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->content_hash, 0u);
}

}  // namespace
}  // namespace rlrt
