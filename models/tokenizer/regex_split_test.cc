// Ladder step 1: the pre-tokenizer split with the pattern read from Qwen3's
// tokenizer.json. Expected pieces worked out by hand from the pattern
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}
//   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/tokenizer/pre_tokenizer.h"
#include "models/tokenizer/regex.h"
#include "models/tokenizer/test_data.h"

namespace rlrt::tokenizer_internal {
namespace {

using Pieces = std::vector<std::pair<std::string, size_t>>;  // text, offset

class QwenSplitTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const nlohmann::json root = rlrt::testing::ReadJsonOrFail(
        rlrt::testing::QwenDir() / "tokenizer.json");
    const auto& split = root["pre_tokenizer"]["pretokenizers"][0];
    ASSERT_EQ(split["type"], "Split");
    auto regex = Regex::Compile(split["pattern"]["Regex"].get<std::string>());
    ASSERT_TRUE(regex.ok()) << regex.status();
    regex_ = std::move(regex).value().release();
    auto pre = PreTokenizer::FromJson(root["pre_tokenizer"]);
    ASSERT_TRUE(pre.ok()) << pre.status();
    pre_ = new PreTokenizer(std::move(pre).value());
  }

  static Pieces Split(std::string_view text) {
    std::vector<Span> spans;
    SplitIsolated(*regex_, text, &spans);
    Pieces pieces;
    for (const Span& s : spans) {
      pieces.emplace_back(std::string(text.substr(s.begin, s.end - s.begin)),
                          s.begin);
    }
    // The whole pre-tokenizer (Split + ByteLevel without regex) must agree.
    std::vector<Span> whole;
    pre_->Split(text, &whole);
    EXPECT_EQ(whole, spans) << text;
    return pieces;
  }

  static Regex* regex_;
  static PreTokenizer* pre_;
};
Regex* QwenSplitTest::regex_ = nullptr;
PreTokenizer* QwenSplitTest::pre_ = nullptr;

TEST_F(QwenSplitTest, WordsContractionsAndNewlines) {
  EXPECT_EQ(Split("Hello's world\n  test"), (Pieces{{"Hello", 0},
                                                    {"'s", 5},
                                                    {" world", 7},
                                                    {"\n", 13},
                                                    {" ", 14},
                                                    {" test", 15}}));
  EXPECT_EQ(Split("DON'T I'm"),
            (Pieces{{"DON", 0}, {"'T", 3}, {" I", 5}, {"'m", 7}}));
}

TEST_F(QwenSplitTest, DigitsOneAtATime) {
  EXPECT_EQ(Split("abc 12345 x"), (Pieces{{"abc", 0},
                                          {" ", 3},
                                          {"1", 4},
                                          {"2", 5},
                                          {"3", 6},
                                          {"4", 7},
                                          {"5", 8},
                                          {" x", 9}}));
  // Non-ASCII digits are \p{N} too: Arabic-Indic 1 and 2 (2 bytes each).
  EXPECT_EQ(Split("\xD9\xA1\xD9\xA2"),
            (Pieces{{"\xD9\xA1", 0}, {"\xD9\xA2", 2}}));
}

TEST_F(QwenSplitTest, WhitespaceRuns) {
  // A run before a word leaves its last space to the word.
  EXPECT_EQ(Split("a   b"), (Pieces{{"a", 0}, {"  ", 1}, {" b", 3}}));
  EXPECT_EQ(Split("a  "), (Pieces{{"a", 0}, {"  ", 1}}));
  EXPECT_EQ(Split("\t\tx"), (Pieces{{"\t", 0}, {"\tx", 1}}));
  // Spaces and newlines together end at the last newline.
  EXPECT_EQ(Split("x \n\n y"), (Pieces{{"x", 0}, {" \n\n", 1}, {" y", 4}}));
}

TEST_F(QwenSplitTest, CarriageReturns) {
  EXPECT_EQ(Split("a\r\nb"), (Pieces{{"a", 0}, {"\r\n", 1}, {"b", 3}}));
  EXPECT_EQ(Split("a\r\r\n\nb"), (Pieces{{"a", 0}, {"\r\r\n\n", 1}, {"b", 5}}));
}

TEST_F(QwenSplitTest, PunctuationAndPrefixes) {
  EXPECT_EQ(Split("end.\n\nNext"),
            (Pieces{{"end", 0}, {".\n\n", 3}, {"Next", 6}}));
  EXPECT_EQ(Split("$hello (ab)"),
            (Pieces{{"$hello", 0}, {" (", 6}, {"ab", 8}, {")", 10}}));
  // CJK: the full-width comma prefixes the following word.
  EXPECT_EQ(Split("\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95"
                  "\x8C"),
            (Pieces{{"\xE4\xBD\xA0\xE5\xA5\xBD", 0},
                    {"\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C", 6}}));
}

TEST_F(QwenSplitTest, InvalidBytesArePiecesOfTheirOwn) {
  EXPECT_EQ(Split("ab\xFF"
                  "cd"),
            (Pieces{{"ab", 0}, {"\xFF", 2}, {"cd", 3}}));
  EXPECT_EQ(Split("\xE4\xBD"), (Pieces{{"\xE4", 0}, {"\xBD", 1}}));
  EXPECT_EQ(Split(""), Pieces{});
}

TEST_F(QwenSplitTest, HugeWhitespaceRunIsCoveredExactly) {
  const std::string text =
      "a" + std::string(200000, ' ') + "b" + std::string(100000, '\n');
  std::vector<Span> spans;
  SplitIsolated(*regex_, text, &spans);
  size_t cursor = 0;
  for (const Span& s : spans) {
    ASSERT_EQ(s.begin, cursor);
    ASSERT_GT(s.end, s.begin);
    cursor = s.end;
  }
  EXPECT_EQ(cursor, text.size());
}

TEST(RegexTest, BadPatternIsAnError) {
  auto regex = Regex::Compile("(unclosed");
  ASSERT_FALSE(regex.ok());
  EXPECT_EQ(regex.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(regex.status().message().find("offset"), std::string::npos);
}

}  // namespace
}  // namespace rlrt::tokenizer_internal
