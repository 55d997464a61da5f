#include "sampler/output_tracker.h"

#include <gtest/gtest.h>

namespace rlrt {
namespace {

class OutputTrackerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = LoadTokenizer(RLRT_SHARED_DIR "/models/qwen3-tokenizer");
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = std::move(tok).value().release();
  }
  // Feeds the ids of `text` one by one until the tracker says stop.
  static OutputTracker Feed(const std::string& text, StopConditions stop,
                            std::vector<int32_t> extra = {}) {
    OutputTracker tracker(tokenizer_, std::move(stop));
    std::vector<int32_t> ids = tokenizer_->Encode(text);
    ids.insert(ids.end(), extra.begin(), extra.end());
    for (int32_t id : ids) {
      auto r = tracker.Append(id);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok() || *r != FinishReason::kNone) break;
    }
    return tracker;
  }
  static inline const Tokenizer* tokenizer_ = nullptr;
};

TEST_F(OutputTrackerTest, StopTokenEndsWithTheTokenInIdsButNotInText) {
  const int32_t im_end = *tokenizer_->TokenToId("<|im_end|>");
  OutputTracker t =
      Feed("The answer is 42.", {{}, {im_end}, 100}, {im_end, 9707});
  EXPECT_EQ(t.finish_reason(), FinishReason::kStop);
  EXPECT_EQ(t.text(), "The answer is 42.");
  EXPECT_EQ(t.ids().back(), im_end);
  EXPECT_EQ(t.matched_stop_token(), im_end);
  EXPECT_EQ(t.ids().size(), tokenizer_->Encode("The answer is 42.").size() + 1);
}

TEST_F(OutputTrackerTest, StopStringSpanningTokensCutsTheText) {
  // "</answer>" is several tokens; the text is cut before it and the ids end
  // with the token that completed it.
  const std::string text = "<answer>18</answer> and more text";
  OutputTracker t = Feed(text, {{"</answer>"}, {}, 100});
  EXPECT_EQ(t.finish_reason(), FinishReason::kStop);
  EXPECT_EQ(t.text(), "<answer>18");
  EXPECT_EQ(t.matched_stop_string(), "</answer>");
  auto decoded = tokenizer_->Decode(t.ids(), false);
  ASSERT_TRUE(decoded.ok());
  EXPECT_NE(decoded->find("</answer>"), std::string::npos);
  EXPECT_EQ(decoded->find(" and more"),
            std::string::npos);  // Stopped right there.
}

TEST_F(OutputTrackerTest, EarliestOfSeveralStopStringsWins) {
  OutputTracker t =
      Feed("alpha beta gamma delta", {{"delta", "beta"}, {}, 100});
  EXPECT_EQ(t.text(), "alpha ");
  EXPECT_EQ(t.matched_stop_string(), "beta");
}

TEST_F(OutputTrackerTest, LengthLimitAndCharactersSplitAcrossTokens) {
  const std::string text = "猫😀猫😀猫";  // Emoji span several byte-level tokens.
  const auto ids = tokenizer_->Encode(text);
  OutputTracker full = Feed(text, {{}, {}, static_cast<int64_t>(ids.size())});
  EXPECT_EQ(full.finish_reason(), FinishReason::kLength);
  EXPECT_EQ(full.text(), text);
  OutputTracker cut = Feed(text, {{}, {}, 2});
  EXPECT_EQ(cut.finish_reason(), FinishReason::kLength);
  EXPECT_EQ(cut.ids().size(), 2u);
  EXPECT_EQ(cut.text(), *tokenizer_->Decode(cut.ids(), false));
}

TEST_F(OutputTrackerTest, ErrorsAndValidation) {
  OutputTracker t(tokenizer_, {{}, {}, 1});
  ASSERT_TRUE(t.Append(9707).ok());
  EXPECT_FALSE(t.Append(9707).ok());  // Already finished.
  OutputTracker u(tokenizer_, {{}, {}, 5});
  EXPECT_FALSE(u.Append(999999).ok());  // Unknown id.
  EXPECT_TRUE(u.ids().empty());
  EXPECT_FALSE(ValidateStopConditions({{""}, {}, 5}).ok());
  EXPECT_FALSE(ValidateStopConditions({{}, {-1}, 5}).ok());
  EXPECT_FALSE(ValidateStopConditions({{}, {}, 0}).ok());
  EXPECT_TRUE(ValidateStopConditions({{"x"}, {1}, 5}).ok());
}

TEST_F(OutputTrackerTest, WithoutATokenizerIdsStillStop) {
  OutputTracker t(nullptr, {{}, {7}, 10});
  EXPECT_EQ(*t.Append(3), FinishReason::kNone);
  EXPECT_EQ(*t.Append(7), FinishReason::kStop);
  EXPECT_EQ(t.text(), "");
}

}  // namespace
}  // namespace rlrt
