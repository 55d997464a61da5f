// Ladder step 6: decode(encode(x)) == x, every vocabulary entry, and
// streaming decode.
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "models/tokenizer/normalizer.h"
#include "models/tokenizer/stream_decoder.h"
#include "models/tokenizer/test_data.h"
#include "models/tokenizer/tokenizer.h"
#include "models/tokenizer/utf8.h"

namespace rlrt {
namespace {

using testing::QwenTokenizer;
using testing::StoriesTokenizer;
using tokenizer_internal::AppendUtf8;
using tokenizer_internal::IsValidUtf8;

// Random text from classes that NFC leaves unchanged (so the round trip
// must be exact), plus bytes that are never valid UTF-8 on their own.
std::string RandomStableText(std::mt19937& rng, int length) {
  auto pick = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  static const char* const kSnippets[] = {
      "def f(x):\n    return x ** 2\n",
      "for (int i = 0; i < n; ++i) {}",
      "#### 18",
      "<<16-3-4=9>>9",
      "\r\n",
      "   ",
      "\t\t",
      "\n\n\n",
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91"
      "\xA7",                              // Family ZWJ sequence.
      "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",  // Thumbs up, skin tone.
      "\xE3\x80\x80",                      // Ideographic space.
      "\xC2\xA0",                          // No-break space.
      "'s 're 'LL",
      "12,345.67"};
  std::string s;
  for (int i = 0; i < length; ++i) {
    switch (pick(0, 9)) {
      case 0:
      case 1:
        s.push_back(static_cast<char>(pick(0, 127)));  // Any ASCII.
        break;
      case 2:
        AppendUtf8(static_cast<char32_t>(pick(0x4E00, 0x9FFF)), &s);  // CJK
        break;
      case 3:
        AppendUtf8(static_cast<char32_t>(pick(0x1F300, 0x1F64F)), &s);
        break;
      case 4:
        AppendUtf8(static_cast<char32_t>(pick(0x0410, 0x044F)), &s);
        break;
      case 5:
        AppendUtf8(static_cast<char32_t>(pick(0xAC00, 0xD7A3)), &s);  // Hangul
        break;
      case 6:
        s.push_back(static_cast<char>('0' + pick(0, 9)));
        break;
      case 7:
        s.append(static_cast<size_t>(pick(1, 12)), pick(0, 1) ? ' ' : '\n');
        break;
      case 8:
        s += kSnippets[pick(0, std::size(kSnippets) - 1)];
        break;
      case 9: {
        // A continuation byte, C0/C1, or F5-FF: invalid wherever it lands.
        const int b = pick(0, 2) == 0 ? pick(0xF5, 0xFF) : pick(0x80, 0xC1);
        s.push_back(static_cast<char>(b));
        break;
      }
    }
  }
  return s;
}

void ExpectRoundTrip(const Tokenizer& tok, const std::string& text) {
  const std::vector<int32_t> ids = tok.Encode(text);
  auto decoded = tok.Decode(ids);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, text);
}

TEST(RoundTripTest, QwenRandomText) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  std::mt19937 rng(1234);
  for (int i = 0; i < 300; ++i) {
    ExpectRoundTrip(*tok, RandomStableText(rng, 1 + i % 60));
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(RoundTripTest, QwenRandomBytesRoundTripToTheirNfcForm) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  auto nfc =
      tokenizer_internal::Normalizer::FromJson(nlohmann::json{{"type", "NFC"}});
  ASSERT_TRUE(nfc.ok());
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 300; ++i) {
    std::string text;
    for (int j = 0; j < 1 + i % 80; ++j)
      text.push_back(static_cast<char>(byte(rng)));
    std::string expected;
    nfc->Normalize(text, &expected);
    auto decoded = tok->Decode(tok->Encode(text));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    ASSERT_EQ(*decoded, expected) << "case " << i;
  }
}

TEST(RoundTripTest, StoriesRandomText) {
  const Tokenizer* tok = StoriesTokenizer();
  ASSERT_NE(tok, nullptr);
  std::mt19937 rng(5);
  for (int i = 0; i < 300; ++i) {
    // The SentencePiece decoder drops the one space it prepended, so the
    // round trip is exact for any text, including a leading space.
    ExpectRoundTrip(*tok, RandomStableText(rng, 1 + i % 40));
    if (::testing::Test::HasFailure()) return;
  }
}

// Every entry of the vocabulary: its text encodes to something that decodes
// back to (the NFC form of) the same text, and in most cases to the entry
// itself (not always: BPE may reach the same string through other merges,
// and the pre-tokenizer may split it).
// `must_be_exact` names entries that have to come back as themselves.
void CheckEveryEntry(
    const Tokenizer& tok, int32_t first_added, double min_exact_fraction,
    const std::function<bool(std::string_view)>& must_be_exact = nullptr) {
  auto nfc =
      tokenizer_internal::Normalizer::FromJson(nlohmann::json{{"type", "NFC"}});
  ASSERT_TRUE(nfc.ok());
  EncodeOptions plain;
  plain.parse_special = false;
  int exact = 0;
  int total = 0;
  std::string expected;
  for (int32_t id = 0; id < first_added; ++id) {
    if (!tok.IdToToken(id)) continue;
    const int32_t one[] = {id};
    auto text = tok.Decode(one);
    ASSERT_TRUE(text.ok()) << id;
    const std::vector<int32_t> ids = tok.Encode(*text, plain);
    ++total;
    const bool is_exact = ids.size() == 1 && ids[0] == id;
    if (is_exact) ++exact;
    if (must_be_exact && must_be_exact(*tok.IdToToken(id))) {
      EXPECT_TRUE(is_exact) << "id " << id;
    }
    auto back = tok.Decode(ids);
    ASSERT_TRUE(back.ok());
    nfc->Normalize(*text, &expected);
    ASSERT_EQ(*back, expected) << "id " << id;
  }
  EXPECT_GE(exact, min_exact_fraction * total)
      << exact << " of " << total << " entries encode to themselves";
  std::printf("%d of %d vocabulary entries encode to exactly themselves\n",
              exact, total);
}

TEST(RoundTripTest, QwenEveryVocabularyEntry) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  CheckEveryEntry(*tok, 151643, 0.95);
}

TEST(RoundTripTest, StoriesEveryVocabularyEntry) {
  const Tokenizer* tok = StoriesTokenizer();
  ASSERT_NE(tok, nullptr);
  // Decode strips the leading space and Encode prepends it again, so every
  // word-initial entry ("▁" + more) must come back as itself; the others
  // (word-internal pieces, <0xNN> bytes) get the "▁" prepended and cannot.
  const std::string_view kMeta = "\xE2\x96\x81";
  CheckEveryEntry(*tok, 512, 90.0 / 512, [&](std::string_view token) {
    return token.starts_with(kMeta) && token.size() > kMeta.size();
  });
}

// Feeds ids one at a time; the pieces must be valid UTF-8 and add up to
// the full decode. Returns how many ids produced nothing (held bytes).
int StreamAndCompare(const Tokenizer& tok, const std::vector<int32_t>& ids,
                     bool skip_special) {
  StreamDecoder stream(tok, skip_special);
  std::string streamed;
  int held = 0;
  for (int32_t id : ids) {
    auto piece = stream.Next(id);
    EXPECT_TRUE(piece.ok()) << piece.status();
    if (!piece.ok()) return held;
    EXPECT_TRUE(IsValidUtf8(*piece));
    if (piece->empty()) ++held;
    streamed += *piece;
  }
  EXPECT_EQ(stream.Flush(), "");
  auto full = tok.Decode(ids, skip_special);
  EXPECT_TRUE(full.ok());
  EXPECT_EQ(streamed, *full);
  return held;
}

TEST(StreamDecoderTest, HoldsCharactersSplitAcrossTokens) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  // Rare characters (Egyptian hieroglyphs, a mathematical letter, a new
  // emoji) are spelled in several byte tokens.
  const std::string text =
      "<|im_start|>Hi \xF0\x93\x80\x80\xF0\x93\x80\x81 \xF0\x9D\x95\x8F and "
      "\xF0\x9F\xAB\xA0 \xE4\xB8\xAD\xE6\x96\x87\xE9\xBE\x98<|im_end|>";
  const std::vector<int32_t> ids = tok->Encode(text);
  EXPECT_GT(StreamAndCompare(*tok, ids, false), 0);
  StreamAndCompare(*tok, ids, true);
}

TEST(StreamDecoderTest, StoriesStripsTheLeadingSpaceOnce) {
  const Tokenizer* tok = StoriesTokenizer();
  ASSERT_NE(tok, nullptr);
  EncodeOptions with_bos;
  with_bos.add_special_tokens = true;
  const std::vector<int32_t> ids = tok->Encode(
      " F\xC3\xBC\xC3\x9F"
      "e \xF0\x9F\xA6\x99 x",
      with_bos);
  EXPECT_GT(StreamAndCompare(*tok, ids, true), 0);
  StreamAndCompare(*tok, ids, false);
}

TEST(StreamDecoderTest, InvalidBytesAreNotHeldForever) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  StreamDecoder stream(*tok);
  // A lone lead byte is held; the next ASCII token shows it can never be
  // completed, so both come out together.
  const std::vector<int32_t> lead = tok->Encode("\xE4");
  ASSERT_EQ(lead.size(), 1u);
  auto first = stream.Next(lead[0]);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, "");
  auto second = stream.Next(tok->Encode("a")[0]);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second,
            "\xE4"
            "a");
  // Held bytes come out on Flush.
  ASSERT_TRUE(stream.Next(lead[0]).ok());
  EXPECT_EQ(stream.Flush(), "\xE4");
  // Unknown ids are refused and change nothing.
  EXPECT_FALSE(stream.Next(-5).ok());
  EXPECT_FALSE(stream.Next(200000).ok());
  auto after = stream.Next(tok->Encode("b")[0]);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, "b");
}

}  // namespace
}  // namespace rlrt
