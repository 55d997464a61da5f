#include "base/json_limits.h"

#include <gtest/gtest.h>

#include <string>

namespace rlrt {
namespace {

std::string Nested(int levels, char open = '[', char close = ']') {
  return std::string(levels, open) + std::string(levels, close);
}

TEST(JsonLimitsTest, DepthUpToTheLimitPassesOneMoreFails) {
  EXPECT_TRUE(CheckJsonDepth(Nested(5), "body", 5).ok());
  const Status deeper = CheckJsonDepth(Nested(6), "body", 5);
  EXPECT_EQ(deeper.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(deeper.message(), "body: JSON nested deeper than 5 levels");
  // Objects and arrays count alike, siblings do not add up.
  EXPECT_TRUE(
      CheckJsonDepth(R"({"a": [1, {"b": 2}], "c": [[]]})", "x", 3).ok());
  EXPECT_FALSE(CheckJsonDepth(R"({"a": [1, {"b": [[]]}]})", "x", 3).ok());
}

TEST(JsonLimitsTest, BracketsInsideStringsDoNotCount) {
  EXPECT_TRUE(
      CheckJsonDepth(R"({"content": "[[[[[[[[{{{{ \" ]]]"})", "x", 1).ok());
  // An escaped backslash ends before the quote, which then closes the
  // string, so the bracket after it counts.
  EXPECT_FALSE(CheckJsonDepth(R"({"a": "\\", "b": [[]]})", "x", 2).ok());
  EXPECT_TRUE(CheckJsonDepth(R"({"a": "\\", "b": []})", "x", 2).ok());
}

TEST(JsonLimitsTest, TheDefaultRefusesTheStackKillerAndKeepsRealDocuments) {
  EXPECT_FALSE(CheckJsonDepth(Nested(60000), "chat body").ok());
  EXPECT_TRUE(CheckJsonDepth(Nested(kMaxJsonDepth), "ok").ok());
  // Malformed text is left to the parser.
  EXPECT_TRUE(CheckJsonDepth("]]]{", "x", 1).ok());
  EXPECT_TRUE(CheckJsonDepth("", "x", 1).ok());
}

}  // namespace
}  // namespace rlrt
