// The BPE model on small hand-made vocabularies, where the expected ids can
// be worked out by hand.
#include "models/tokenizer/bpe_model.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "models/tokenizer/byte_level.h"

namespace rlrt::tokenizer_internal {
namespace {

std::vector<int32_t> EncodeAll(const BpeModel& model, std::string_view s) {
  std::vector<int32_t> ids;
  model.Encode(s, &ids);
  return ids;
}

// Characters a..d plus merged entries; merge ranks are list positions.
BpeModel LettersModel(std::vector<std::pair<std::string, std::string>> merges,
                      BpeConfig config = {}) {
  TokenMap vocab = {{"<unk>", 0}, {"a", 1},    {"b", 2},  {"c", 3},
                    {"d", 4},     {"ab", 5},   {"bc", 6}, {"abc", 7},
                    {"aa", 8},    {"aaaa", 9}, {"cd", 10}};
  if (config.unk_token.empty()) config.unk_token = "<unk>";
  auto model = BpeModel::Create(vocab, merges, config);
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(model).value();
}

TEST(BpeModelTest, LowestRankMergesFirst) {
  // "bc" outranks "ab": abc -> a|bc, and no (a, bc) merge exists.
  BpeModel bc_first = LettersModel({{"b", "c"}, {"a", "b"}});
  EXPECT_EQ(EncodeAll(bc_first, "abc"), (std::vector<int32_t>{1, 6}));
  BpeModel ab_first = LettersModel({{"a", "b"}, {"b", "c"}, {"ab", "c"}});
  EXPECT_EQ(EncodeAll(ab_first, "abc"), (std::vector<int32_t>{7}));
}

TEST(BpeModelTest, EqualRanksMergeLeftmostFirst) {
  // aaa: the left pair merges first -> aa|a, not a|aa.
  BpeModel model = LettersModel({{"a", "a"}, {"aa", "aa"}});
  EXPECT_EQ(EncodeAll(model, "aaa"), (std::vector<int32_t>{8, 1}));
  EXPECT_EQ(EncodeAll(model, "aaaa"), (std::vector<int32_t>{9}));
  EXPECT_EQ(EncodeAll(model, "aaaaa"), (std::vector<int32_t>{9, 1}));
}

TEST(BpeModelTest, LongPieceMatchesPattern) {
  // 10,000 repetitions of "abcd" with merges ab, cd: every unit gives
  // ab|cd. A quadratic rescan would be slow here; the heap is not.
  BpeModel model = LettersModel({{"a", "b"}, {"c", "d"}});
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "abcd";
  const std::vector<int32_t> ids = EncodeAll(model, text);
  ASSERT_EQ(ids.size(), 20000u);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(ids[i], i % 2 == 0 ? 5 : 10) << i;
  }
}

TEST(BpeModelTest, UnknownCharactersBecomeUnkAndFuse) {
  BpeModel plain = LettersModel({});
  EXPECT_EQ(EncodeAll(plain, "axyb"), (std::vector<int32_t>{1, 0, 0, 2}));
  BpeConfig fuse;
  fuse.fuse_unk = true;
  BpeModel fused = LettersModel({}, fuse);
  EXPECT_EQ(EncodeAll(fused, "axyb\xFF"), (std::vector<int32_t>{1, 0, 2, 0}));
}

TEST(BpeModelTest, ByteFallbackSpellsMissingCharactersInBytes) {
  TokenMap vocab = {{"h", 256}, {"i", 257}, {"hi", 258}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab.emplace(name, b);
  }
  BpeConfig config;
  config.byte_fallback = true;
  auto model = BpeModel::Create(vocab, {{"h", "i"}}, config);
  ASSERT_TRUE(model.ok()) << model.status();
  // é is C3 A9; the lone 0xFF byte is invalid UTF-8 and falls back too.
  EXPECT_EQ(EncodeAll(*model, "hi\xC3\xA9i\xFF"),
            (std::vector<int32_t>{258, 0xC3, 0xA9, 257, 0xFF}));
}

TEST(BpeModelTest, ByteLevelStartsFromBytes) {
  TokenMap vocab;
  for (int b = 0; b < 256; ++b) {
    vocab.emplace(std::string(ByteLevelChar(static_cast<uint8_t>(b))), b);
  }
  vocab.emplace(ToByteLevel(" h"), 300);
  BpeConfig config;
  config.byte_level = true;
  auto model =
      BpeModel::Create(vocab, {{ToByteLevel(" "), ToByteLevel("h")}}, config);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(EncodeAll(*model, " hi\xFF"),
            (std::vector<int32_t>{300, 'i', 0xFF}));
}

TEST(BpeModelTest, IgnoreMergesTakesWholeEntries) {
  // "aaaa" is in the vocabulary, so with ignore_merges it is one token even
  // though no merge builds it.
  BpeConfig config;
  config.ignore_merges = true;
  BpeModel model = LettersModel({{"a", "a"}}, config);
  EXPECT_EQ(EncodeAll(model, "aaaa"), (std::vector<int32_t>{9}));
  EXPECT_EQ(EncodeAll(model, "aaa"), (std::vector<int32_t>{8, 1}));
}

TEST(BpeModelTest, RefusesBadConfigurations) {
  TokenMap vocab = {{"a", 0}, {"b", 1}};
  BpeConfig with_unk;
  with_unk.unk_token = "a";
  // The merge result "ab" is not in the vocabulary.
  auto merge = BpeModel::Create(vocab, {{"a", "b"}}, with_unk);
  ASSERT_FALSE(merge.ok());
  EXPECT_NE(merge.status().message().find("\"ab\""), std::string::npos)
      << merge.status();
  // A merge part that is not in the vocabulary.
  EXPECT_FALSE(BpeModel::Create(vocab, {{"a", "z"}}, with_unk).ok());
  // Nothing could represent "z".
  EXPECT_FALSE(BpeModel::Create(vocab, {}, BpeConfig{}).ok());
  // Duplicate ids.
  EXPECT_FALSE(BpeModel::Create({{"a", 0}, {"b", 0}}, {}, with_unk).ok());
  // Byte fallback without the <0xNN> tokens.
  BpeConfig fallback;
  fallback.byte_fallback = true;
  EXPECT_FALSE(BpeModel::Create(vocab, {}, fallback).ok());
}

}  // namespace
}  // namespace rlrt::tokenizer_internal
