// Ladder step 2: normalization (NFC for Qwen; Prepend + Replace for Llama 2).
#include "models/tokenizer/normalizer.h"

#include <gtest/gtest.h>

#include <string>

#include "models/tokenizer/test_data.h"

namespace rlrt::tokenizer_internal {
namespace {

std::string Apply(const char* config, std::string_view text) {
  auto json = ParseJson(config, "test");
  EXPECT_TRUE(json.ok()) << json.status();
  auto normalizer = Normalizer::FromJson(*json);
  EXPECT_TRUE(normalizer.ok()) << normalizer.status();
  std::string out = "stale";
  normalizer->Normalize(text, &out);
  return out;
}

constexpr const char* kNfc = R"({"type": "NFC"})";

TEST(NormalizerTest, NfcComposes) {
  EXPECT_EQ(Apply(kNfc, "cafe\xCC\x81"), "caf\xC3\xA9");  // e + U+0301 -> é
  EXPECT_EQ(Apply(kNfc, "caf\xC3\xA9"), "caf\xC3\xA9");   // Already NFC.
  // U+212B ANGSTROM SIGN is a singleton that NFC replaces with U+00C5.
  EXPECT_EQ(Apply(kNfc, "\xE2\x84\xAB"), "\xC3\x85");
  // Hangul jamo U+1100 U+1161 compose to the syllable U+AC00.
  EXPECT_EQ(Apply(kNfc, "\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");
  // Canonical reordering: U+0323 (ccc 220) before U+0307 (ccc 230), and
  // s + dot below + dot above composes to U+1E69.
  EXPECT_EQ(Apply(kNfc, "s\xCC\x87\xCC\xA3"), "\xE1\xB9\xA9");
  // Compatibility characters are left alone by NFC.
  EXPECT_EQ(Apply(kNfc, "\xEF\xAC\x81"), "\xEF\xAC\x81");  // ﬁ ligature
  EXPECT_EQ(Apply(kNfc, ""), "");
  EXPECT_EQ(Apply(kNfc, std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(NormalizerTest, OtherUnicodeForms) {
  EXPECT_EQ(Apply(R"({"type": "NFD"})", "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(Apply(R"({"type": "NFKC"})", "\xEF\xAC\x81"), "fi");
  EXPECT_EQ(Apply(R"({"type": "NFKD"})", "\xC3\xA9\xEF\xAC\x81"),
            "e\xCC\x81"
            "fi");
}

TEST(NormalizerTest, InvalidBytesPassThroughAndBlockComposition) {
  // The invalid byte separates e from the combining accent.
  EXPECT_EQ(Apply(kNfc, "e\xFF\xCC\x81"), "e\xFF\xCC\x81");
  EXPECT_EQ(Apply(kNfc,
                  "\xC3"
                  "cafe\xCC\x81"),
            "\xC3"
            "caf\xC3\xA9");
}

TEST(NormalizerTest, PrependAndReplaceAsInLlama2) {
  constexpr const char* kLlama = R"({"type": "Sequence", "normalizers": [
      {"type": "Prepend", "prepend": "\u2581"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]})";
  EXPECT_EQ(Apply(kLlama, "hello  world"),
            "\xE2\x96\x81hello\xE2\x96\x81\xE2\x96\x81world");
  EXPECT_EQ(Apply(kLlama, ""), "");  // Nothing to prepend to.
  EXPECT_EQ(Apply(kLlama, " "), "\xE2\x96\x81\xE2\x96\x81");
}

TEST(NormalizerTest, NullIsIdentity) {
  auto normalizer = Normalizer::FromJson(Json(nullptr));
  ASSERT_TRUE(normalizer.ok());
  EXPECT_TRUE(normalizer->is_identity());
}

TEST(NormalizerTest, QwenComposedAndDecomposedGiveTheSameIds) {
  const Tokenizer* tok = rlrt::testing::QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  // Ids from qwen3-derived-vectors.json for the composed form.
  const std::vector<int32_t> expected = {3376, 37572, 586, 51950};
  EXPECT_EQ(tok->Encode("na\xC3\xAFve caf\xC3\xA9"), expected);
  EXPECT_EQ(tok->Encode("nai\xCC\x88ve cafe\xCC\x81"), expected);
  EXPECT_EQ(tok->Encode("\xE2\x84\xAB"), tok->Encode("\xC3\x85"));
  // Decoding gives the normalized text back.
  auto text = tok->Decode(tok->Encode("nai\xCC\x88ve"));
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "na\xC3\xAFve");
}

}  // namespace
}  // namespace rlrt::tokenizer_internal
