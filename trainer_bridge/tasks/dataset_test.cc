// Datasets other than GSM8K: JSON-lines files with fields of their own,
// answers in other formats, and the built-in rewards that read them.
#include "trainer_bridge/tasks/dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "models/tokenizer/tokenizer.h"
#include "trainer_bridge/tasks/dataset_task.h"
#include "trainer_bridge/tasks/rewards.h"

namespace rlrt {
namespace {

class DatasetTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("dataset_" + std::to_string(::getpid()) + "_" +
                               std::to_string(files_++) + ".jsonl"))
                                 .string();
    std::ofstream(path) << text;
    paths_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const std::string& p : paths_) std::filesystem::remove(p);
  }
  int files_ = 0;
  std::vector<std::string> paths_;
};

TEST_F(DatasetTest, ReadsFieldsOfItsOwnInEachFormat) {
  DatasetFields boxed{"problem", "solution", AnswerFormat::kBoxed, false};
  auto math = LoadJsonlDataset(
      Write("{\"problem\": \"Half of 1?\", \"solution\": \"It is "
            "$\\\\boxed{\\\\frac{1}{2}}$.\"}\n\n"
            "{\"problem\": \"2+2?\", \"solution\": 4}\n"),
      boxed);
  ASSERT_TRUE(math.ok()) << math.status();
  ASSERT_EQ(math->size(), 2u);
  EXPECT_EQ((*math)[0].prompt, "Half of 1?");
  EXPECT_EQ((*math)[0].gold, "\\frac{1}{2}");
  EXPECT_EQ((*math)[1].answer, "4");  // A number field, as JSON writes it.
  EXPECT_EQ((*math)[1].gold, "4");

  DatasetFields plain{"q", "a", AnswerFormat::kPlain, false};
  auto capitals = LoadJsonlDataset(
      Write("{\"q\": \"Capital of France?\", \"a\": \"  Paris. \"}\n"), plain);
  ASSERT_TRUE(capitals.ok()) << capitals.status();
  EXPECT_EQ((*capitals)[0].gold, "paris");

  DatasetFields unanswered{"q", "", AnswerFormat::kPlain, false};
  auto open =
      LoadJsonlDataset(Write("{\"q\": \"Write a haiku.\"}\n"), unanswered);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_EQ((*open)[0].gold, "");
}

TEST_F(DatasetTest, BadLinesNameTheFileAndLine) {
  DatasetFields fields{"q", "a", AnswerFormat::kBoxed, true};
  const struct {
    const char* text;
    const char* error;
  } cases[] = {
      {"{\"q\": \"x\", \"a\": \"\\\\boxed{1}\"}\n{\"a\": \"1\"}\n",
       ":2: missing string field \"q\""},
      {"{\"q\": \"x\", \"a\": [1]}\n", ":1: missing string field \"a\""},
      {"{\"q\": \"x\", \"a\": \"no box\"}\n",
       ":1: answer does not end in \"\\boxed{<number>}\""},
      {"[1, 2]\n", ":1: not a JSON object"},
      {"\n\n", "no examples"},
  };
  for (const auto& c : cases) {
    const std::string path = Write(c.text);
    auto r = LoadJsonlDataset(path, fields);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.error), std::string::npos)
        << r.status();
  }
  EXPECT_FALSE(LoadJsonlDataset("/nonexistent/data.jsonl", fields).ok());
}

TEST(AnswerFormatTest, ExtractsAndNormalises) {
  using enum AnswerFormat;
  EXPECT_EQ(ExtractAnswer("so \\boxed{x^{2}} .", kBoxed, true), "x^{2}");
  EXPECT_EQ(ExtractAnswer("\\boxed{1} then more words", kBoxed, true),
            std::nullopt);
  EXPECT_EQ(ExtractAnswer("\\boxed{1} then more words", kBoxed, false), "1");
  // An unclosed box falls back to the previous closed one.
  EXPECT_EQ(ExtractBoxed("\\boxed{7} and \\boxed{8"), "7");
  EXPECT_EQ(ExtractBoxed("no box"), std::nullopt);
  EXPECT_EQ(ExtractAnswer("\\boxed{1,000.50}", kBoxed, true), "1000.5");
  EXPECT_EQ(ExtractAnswer("  Paris  ", kPlain, true), "paris");
  EXPECT_EQ(ExtractAnswer("   ", kPlain, true), std::nullopt);
  EXPECT_EQ(ExtractAnswer("work\n#### 72", kHashes, true), "72");
  EXPECT_EQ(NormalizeAnswer(" $New   York$. "), "new york");
  EXPECT_EQ(NormalizeAnswer("$18"), "18");
  EXPECT_EQ(FormattedAnswer("42", kBoxed), "\\boxed{42}");
  EXPECT_EQ(FormattedAnswer("42", kHashes), "#### 42");
  EXPECT_FALSE(ParseAnswerFormat("latex").ok());
}

TEST(RewardScorerTest, RegexAndLengthRewards) {
  RewardOptions o;
  o.format = AnswerFormat::kBoxed;
  o.regex = 0.5;
  o.regex_pattern = "^<think>[^]*</think>";
  o.length = 1.0;
  o.length_target = 10;
  auto scorer = RewardScorer::Create(o);
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  const RewardScorer::Scored s =
      scorer->Score("<think>a\nb</think> so \\boxed{7}", 15, "7");
  // strict .25 + lenient .25 + correct 2 + regex .5 + length -0.5.
  EXPECT_DOUBLE_EQ(s.total, 0.25 + 0.25 + 2.0 + 0.5 * 1 + 1.0 * -0.5);
  ASSERT_EQ(s.parts.size(), 6u);
  EXPECT_EQ(s.parts[4].first, "regex");
  EXPECT_EQ(s.parts[4].second, 1.0);
  EXPECT_EQ(s.parts[5].first, "length");
  EXPECT_DOUBLE_EQ(s.parts[5].second, -0.5);
  EXPECT_EQ(scorer->Score("no think \\boxed{7}", 10, "7").parts[4].second, 0);
  EXPECT_EQ(LengthPenalty(10, 10), 0.0);
  EXPECT_EQ(LengthPenalty(50, 10), -1.0);  // Floored at -1.

  RewardOptions bad = o;
  bad.regex_pattern = "([";
  EXPECT_FALSE(RewardScorer::Create(bad).ok());
  bad.regex_pattern = "";
  EXPECT_FALSE(RewardScorer::Create(bad).ok());  // A weight, no pattern.
  bad = o;
  bad.length_target = 0;
  EXPECT_FALSE(RewardScorer::Create(bad).ok());
}

TEST_F(DatasetTest, ABoxedTaskAsksForItsFormatAndTrainsOnIt) {
  auto tokenizer = LoadTokenizer(RLRT_SHARED_DIR "/models/qwen3-tokenizer");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  DatasetFields fields{"q", "a", AnswerFormat::kBoxed, false};
  auto examples = LoadJsonlDataset(
      Write("{\"q\": \"What is 6 times 7?\", \"a\": 42}\n"), fields);
  ASSERT_TRUE(examples.ok());
  DatasetTaskOptions o;
  o.system_prompt = DefaultSystemPrompt(AnswerFormat::kBoxed);
  o.rewards.format = AnswerFormat::kBoxed;
  auto task = DatasetTask::Create(*examples, **tokenizer, o);
  ASSERT_TRUE(task.ok()) << task.status();
  auto text = (*tokenizer)->Decode((*task)->prompt_ids(0));
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("\\boxed{<answer>}"), std::string::npos) << *text;
  EXPECT_NE(text->find("What is 6 times 7?"), std::string::npos);
  // A bare answer is taught in the format asked for.
  auto sft = (*task)->SftBatch(0, 1);
  auto target = (*tokenizer)->Decode(sft[0].tokens);
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(*target, "\\boxed{42}<|im_end|>");

  ASSERT_TRUE((*task)->Prompts(0, 1).ok());
  SampleOutput good, bad;
  good.text = "6 x 7 = \\boxed{42}";
  good.token_ids = {1, 2, 3};
  bad.text = "\\boxed{41}";
  bad.token_ids = {1};
  const Reward g = (*task)->Score(0, 0, good);
  const Reward b = (*task)->Score(0, 0, bad);
  EXPECT_DOUBLE_EQ(g.total, 0.25 + 0.25 + 2.0);
  EXPECT_DOUBLE_EQ(b.total, 0.25 + 0.25 + 0.5 * (1 - 1.0 / 42));
}

}  // namespace
}  // namespace rlrt
