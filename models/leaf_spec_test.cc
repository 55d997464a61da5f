#include "models/leaf_spec.h"

#include <gtest/gtest.h>

namespace rlrt {
namespace {

std::vector<LeafSpec> Base() {
  return {{"model.embed_tokens.weight", {16, 8}, DType::kF32},
          {"model.norm.weight", {8}, DType::kF32},
          {"lm_head.weight", {16, 8}, DType::kBF16}};
}

TEST(LeafSpecTest, CountsAndValidation) {
  LeafSpec s{"w", {3, 4, 5}, DType::kBF16};
  EXPECT_EQ(s.NumElements(), 60);
  EXPECT_EQ(s.NumBytes(), 120u);
  EXPECT_EQ(LeafSpec({"scalar", {}, DType::kF32}).NumElements(), 1);
  EXPECT_TRUE(ValidateLeafSpec(s).ok());
  EXPECT_FALSE(ValidateLeafSpec({"", {1}, DType::kF32}).ok());
  EXPECT_FALSE(ValidateLeafSpec({"neg", {2, -1}, DType::kF32}).ok());
  EXPECT_FALSE(
      ValidateLeafSpec({"huge", {1 << 30, 1 << 30, 1 << 30}, DType::kF32})
          .ok());
  EXPECT_EQ(ShapeToString(s.shape), "[3, 4, 5]");
}

TEST(LeafSpecTest, FingerprintIsStableAndSeesEveryField) {
  const auto base = Base();
  const uint64_t fp = StructureFingerprint(base);
  EXPECT_EQ(fp, StructureFingerprint(Base()));

  auto renamed = base;
  renamed[1].name = "model.norm.bias";
  auto reshaped = base;
  reshaped[0].shape = {8, 16};
  auto retyped = base;
  retyped[2].dtype = DType::kF32;
  auto reordered = base;
  std::swap(reordered[0], reordered[2]);
  auto shorter = base;
  shorter.pop_back();
  auto rank_changed = base;
  rank_changed[1].shape = {8, 1};
  for (const auto* other :
       {&renamed, &reshaped, &retyped, &reordered, &shorter, &rank_changed}) {
    EXPECT_NE(StructureFingerprint(*other), fp);
  }
}

TEST(LeafSpecTest, FingerprintLengthPrefixesPreventConcatenationClashes) {
  std::vector<LeafSpec> a = {{"ab", {1}, DType::kF32}, {"c", {1}, DType::kF32}};
  std::vector<LeafSpec> b = {{"a", {1}, DType::kF32}, {"bc", {1}, DType::kF32}};
  EXPECT_NE(StructureFingerprint(a), StructureFingerprint(b));
}

TEST(LeafSpecTest, DiffNamesEachDifference) {
  const auto base = Base();
  EXPECT_EQ(DiffStructures(base, base), "");
  auto other = base;
  other[0].shape = {16, 4};
  other[2].dtype = DType::kF32;
  other.push_back({"extra.weight", {2}, DType::kF32});
  const std::string diff = DiffStructures(base, other);
  EXPECT_NE(
      diff.find("leaf 0 'model.embed_tokens.weight': shape [16, 4] != [16, 8]"),
      std::string::npos)
      << diff;
  EXPECT_NE(diff.find("leaf 2 'lm_head.weight': dtype F32 != BF16"),
            std::string::npos)
      << diff;
  EXPECT_NE(diff.find("extra leaf 3 'extra.weight' (F32 [2])"),
            std::string::npos)
      << diff;
  auto missing = base;
  missing.pop_back();
  EXPECT_NE(
      DiffStructures(base, missing).find("missing leaf 2 'lm_head.weight'"),
      std::string::npos);
}

TEST(LeafSpecTest, DiffIsCapped) {
  std::vector<LeafSpec> a, b;
  for (int i = 0; i < 20; ++i) {
    a.push_back({"w" + std::to_string(i), {1}, DType::kF32});
    b.push_back({"v" + std::to_string(i), {1}, DType::kF32});
  }
  const std::string diff = DiffStructures(a, b, 3);
  EXPECT_NE(diff.find("... and 17 more"), std::string::npos) << diff;
}

}  // namespace
}  // namespace rlrt
