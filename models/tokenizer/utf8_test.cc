#include "models/tokenizer/utf8.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace rlrt::tokenizer_internal {
namespace {

TEST(Utf8Test, ValidCharLength) {
  EXPECT_EQ(ValidCharLength(""), 0u);
  EXPECT_EQ(ValidCharLength("a"), 1u);
  EXPECT_EQ(ValidCharLength(std::string("\0x", 2)), 1u);
  EXPECT_EQ(ValidCharLength("\xC3\xA9"), 2u);          // é
  EXPECT_EQ(ValidCharLength("\xE4\xBD\xA0"), 3u);      // 你
  EXPECT_EQ(ValidCharLength("\xF0\x9F\xA6\x99"), 4u);  // 🦙
  EXPECT_EQ(ValidCharLength("\xF4\x8F\xBF\xBF"), 4u);  // U+10FFFF
  // Invalid: continuation, overlong, surrogate, beyond U+10FFFF, truncated.
  EXPECT_EQ(ValidCharLength("\x80"), 0u);
  EXPECT_EQ(ValidCharLength("\xC0\x80"), 0u);
  EXPECT_EQ(ValidCharLength("\xE0\x80\x80"), 0u);
  EXPECT_EQ(ValidCharLength("\xED\xA0\x80"), 0u);
  EXPECT_EQ(ValidCharLength("\xF4\x90\x80\x80"), 0u);
  EXPECT_EQ(ValidCharLength("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(ValidCharLength("\xE4\xBD"), 0u);
  EXPECT_EQ(ValidCharLength("\xE4\xBDx"), 0u);
}

TEST(Utf8Test, IncompleteTailLength) {
  EXPECT_EQ(IncompleteTailLength(""), 0u);
  EXPECT_EQ(IncompleteTailLength("abc"), 0u);
  EXPECT_EQ(IncompleteTailLength("a\xF0"), 1u);
  EXPECT_EQ(IncompleteTailLength("a\xF0\x9F"), 2u);
  EXPECT_EQ(IncompleteTailLength("a\xF0\x9F\xA6"), 3u);
  EXPECT_EQ(IncompleteTailLength("a\xF0\x9F\xA6\x99"), 0u);
  EXPECT_EQ(IncompleteTailLength("\xE4\xBD"), 2u);
  // Cannot be completed: not held.
  EXPECT_EQ(IncompleteTailLength("\xE0\x80"), 0u);  // Overlong start.
  EXPECT_EQ(IncompleteTailLength("\xED\xA0"), 0u);  // Surrogate start.
  EXPECT_EQ(IncompleteTailLength("\x80\x80"), 0u);
  EXPECT_EQ(IncompleteTailLength("\xFF"), 0u);
  EXPECT_EQ(IncompleteTailLength("\xE4\xBD\xA0\x80"), 0u);
}

TEST(Utf8Test, RunsSplitOffEachInvalidByte) {
  std::vector<std::pair<std::string, bool>> runs;
  ForEachUtf8Run("ab\xFF\xC3\xA9\xE4\xBDz\x80",
                 [&](std::string_view r, bool v) {
                   runs.emplace_back(std::string(r), v);
                 });
  const std::vector<std::pair<std::string, bool>> expected = {
      {"ab", true},    {"\xFF", false}, {"\xC3\xA9", true}, {"\xE4", false},
      {"\xBD", false}, {"z", true},     {"\x80", false}};
  EXPECT_EQ(runs, expected);
}

TEST(Utf8Test, AppendUtf8) {
  std::string s;
  for (char32_t cp : {U'A', U'\u00E9', U'\u4F60', U'\U0001F999'}) {
    AppendUtf8(cp, &s);
  }
  EXPECT_EQ(s, "A\xC3\xA9\xE4\xBD\xA0\xF0\x9F\xA6\x99");
  EXPECT_TRUE(IsValidUtf8(s));
  EXPECT_FALSE(IsValidUtf8("a\xC3"));
}

}  // namespace
}  // namespace rlrt::tokenizer_internal
