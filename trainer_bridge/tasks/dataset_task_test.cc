// GSM8K as an RL task with the real Qwen3 tokenizer: prompts rendered
// through the chat template, a reproducible visiting order, scoring against
// the right gold answer, supervised examples, and greedy evaluation.
#include "trainer_bridge/tasks/dataset_task.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "models/test_util.h"
#include "trainer_bridge/tasks/gsm8k.h"

namespace rlrt {
namespace {

constexpr char kTokenizerDir[] = RLRT_SHARED_DIR "/models/qwen3-tokenizer";
constexpr char kStoriesDir[] = RLRT_SHARED_DIR "/models/stories260K";

std::vector<TaskExample> Examples(int n) {
  std::vector<TaskExample> out;
  for (int i = 0; i < n; ++i) {
    const std::string answer = std::to_string(i * 7 + 3);
    out.push_back({"What is " + std::to_string(i) + " times 7 plus 3?",
                   std::to_string(i) + " * 7 = " + std::to_string(i * 7) +
                       "\n" + std::to_string(i * 7) + " + 3 = " + answer +
                       "\n#### " + answer,
                   answer});
  }
  return out;
}

DatasetTaskOptions Options(uint64_t seed, int64_t max_prompt_length = 512) {
  DatasetTaskOptions o;
  o.seed = seed;
  o.max_prompt_length = max_prompt_length;
  return o;
}

std::unique_ptr<Tokenizer> LoadQwen3Tokenizer() {
  auto t = LoadTokenizer(kTokenizerDir);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

std::string Decode(const Tokenizer& t, const std::vector<int32_t>& ids) {
  auto text = t.Decode(ids);
  EXPECT_TRUE(text.ok());
  return text.ok() ? *text : "";
}

TEST(Gsm8kTaskTest, PromptsAreTheChatTemplateAndTheOrderIsSeeded) {
  auto tokenizer = LoadQwen3Tokenizer();
  auto task = DatasetTask::Create(Examples(10), *tokenizer, Options(1));
  ASSERT_TRUE(task.ok()) << task.status();
  auto again = DatasetTask::Create(Examples(10), *tokenizer, Options(1));
  auto other = DatasetTask::Create(Examples(10), *tokenizer, Options(2));
  EXPECT_EQ(*(*task)->Prompts(3, 4), *(*again)->Prompts(3, 4));
  bool differs = false;
  for (int64_t b = 0; b < 3; ++b)
    differs |= *(*task)->Prompts(b, 4) != *(*other)->Prompts(b, 4);
  EXPECT_TRUE(differs);

  // 10 questions visited in batches of 4 wrap around: every question comes
  // up once in the first 10 positions.
  std::set<std::string> seen;
  for (int64_t b = 0; b < 3; ++b) {
    auto prompts = (*task)->Prompts(b, 4);
    for (int64_t p = 0; p < 4 && b * 4 + p < 10; ++p) {
      const TaskExample& e = (*task)->ExampleAt(b, p, 4);
      const std::string text = Decode(*tokenizer, (*prompts)[p]);
      EXPECT_NE(text.find(e.prompt), std::string::npos) << text;
      EXPECT_NE(text.find("#### "), std::string::npos);  // System prompt.
      EXPECT_TRUE(
          text.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"))
          << text;
      seen.insert(e.prompt);
    }
  }
  EXPECT_EQ(seen.size(), 10u);
}

TEST(Gsm8kTaskTest, ScoresAgainstTheGoldOfThatPrompt) {
  auto tokenizer = LoadQwen3Tokenizer();
  auto task = DatasetTask::Create(Examples(10), *tokenizer, Options(4));
  ASSERT_TRUE(task.ok());
  ASSERT_TRUE((*task)->Prompts(2, 3).ok());
  const std::string gold = (*task)->ExampleAt(2, 1, 3).gold;
  SampleOutput right;
  right.text = "Some steps.\n#### " + gold;
  const Reward r = (*task)->Score(2, 1, right);
  EXPECT_DOUBLE_EQ(r.total, 0.25 + 0.25 + 2.0);
  ASSERT_EQ(r.parts.size(), 4u);
  SampleOutput wrong;
  wrong.text = "#### " + std::to_string(std::stoi(gold) + 1000);
  const Reward w = (*task)->Score(2, 1, wrong);
  EXPECT_DOUBLE_EQ(w.total, 0.25 + 0.25);  // Format only; far off.
  SampleOutput none;
  none.text = "I do not know.";
  EXPECT_DOUBLE_EQ((*task)->Score(2, 1, none).total, 0.0);
}

TEST(Gsm8kTaskTest, LongPromptsAreSkippedAndNoneLeftIsAnError) {
  auto tokenizer = LoadQwen3Tokenizer();
  std::vector<TaskExample> examples = Examples(3);
  examples[1].prompt = std::string(3000, 'x') + " and more words";
  auto task = DatasetTask::Create(examples, *tokenizer, Options(0, 200));
  ASSERT_TRUE(task.ok());
  EXPECT_EQ((*task)->size(), 2);
  EXPECT_EQ((*task)->skipped(), 1);
  auto none = DatasetTask::Create(examples, *tokenizer, Options(0, 5));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("max_prompt_length 5"),
            std::string::npos);
}

TEST(Gsm8kTaskTest, SftExamplesAreTheWorkedAnswerThenEndOfTurn) {
  auto tokenizer = LoadQwen3Tokenizer();
  auto task = DatasetTask::Create(Examples(5), *tokenizer, Options(3));
  ASSERT_TRUE(task.ok());
  const std::vector<SftExample> batch = (*task)->SftBatch(4, 3);
  ASSERT_EQ(batch.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const int64_t at = (4 + i) % 5;
    EXPECT_EQ(batch[i].prompt, (*task)->prompt_ids(at));
    EXPECT_EQ(Decode(*tokenizer, batch[i].tokens),
              (*task)->example(at).answer + "<|im_end|>");
  }
}

TEST(Gsm8kTaskTest, AModelWithoutAKnownChatTemplateIsRefused) {
  // stories260K: a base Llama whose tokenizer has no chat template.
  auto stories = LoadTokenizer(kStoriesDir);
  ASSERT_TRUE(stories.ok()) << stories.status();
  DatasetTaskOptions llama = Options(0);
  llama.model_type = "llama";
  auto refused = DatasetTask::Create(Examples(3), **stories, llama);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find(
                "model 'llama' has no chat template known to this runtime"),
            std::string::npos)
      << refused.status();
  // A Qwen2 model whose tokenizer ships Qwen3's template: not Qwen2's.
  auto tokenizer = LoadQwen3Tokenizer();
  DatasetTaskOptions qwen2 = Options(0);
  qwen2.model_type = "qwen2";
  EXPECT_FALSE(DatasetTask::Create(Examples(3), *tokenizer, qwen2).ok());
}

TEST(Gsm8kTaskTest, ALlama2ChatModelGetsInstPromptsAndEosEndsTheAnswer) {
  // stories260K's tokenizer shipped with a Llama 2 chat template.
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("rlrt_gsm8k_llama2_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(
      std::filesystem::path(kStoriesDir) / "tokenizer.json",
      dir / "tokenizer.json");
  std::ofstream(dir / "tokenizer_config.json") << nlohmann::json{
      {"bos_token", "<s>"},
      {"eos_token", "</s>"},
      {"chat_template",
       "{{ bos_token + '[INST] ' + '<<SYS>>\\n' ... "
       "' [/INST]' }}"}}.dump();
  auto tokenizer = LoadTokenizer(dir);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  DatasetTaskOptions options = Options(0, 4096);
  options.model_type = "llama";
  auto task = DatasetTask::Create(Examples(3), **tokenizer, options);
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ((*task)->chat_template(), ChatTemplateKind::kLlama2);
  for (int64_t i = 0; i < (*task)->size(); ++i) {
    const std::vector<int32_t>& ids = (*task)->prompt_ids(i);
    const std::string expected =
        "<s>[INST] <<SYS>>\n" + std::string(kGsm8kSystemPrompt) +
        "\n<</SYS>>\n\n" + (*task)->example(i).prompt + " [/INST]";
    EXPECT_EQ(ids, (*tokenizer)->Encode(expected));
    ASSERT_GE(ids.size(), 2u);
    EXPECT_EQ(ids[0], 1);  // One BOS: the template's.
    EXPECT_NE(ids[1], 1);
  }
  // Supervised answers end with EOS, where Llama 2 ends an answer.
  for (const SftExample& e : (*task)->SftBatch(0, 3)) {
    ASSERT_FALSE(e.tokens.empty());
    EXPECT_EQ(e.tokens.back(), 2);
    EXPECT_EQ(std::count(e.tokens.begin(), e.tokens.end(), 2), 1);
  }
}

TEST(Gsm8kTaskTest, EvaluationCountsGreedyAnswers) {
  auto mesh = testing::MakeMesh(1, "rollout");
  EngineOptions o;
  o.model.preset = "qwen3-tiny";
  o.model.load_format = "dummy";
  o.tokenizer_dir = kTokenizerDir;
  o.max_total_tokens = 4096;
  auto engine = SamplerEngine::Create(o, mesh.get());
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto task =
      DatasetTask::Create(Examples(6), *(*engine)->tokenizer(), Options(0));
  ASSERT_TRUE(task.ok());
  LocalRollouts rollouts(engine->get(), nullptr);
  auto result = EvaluateTask(rollouts, **task, 100, 12);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->examples, 6);  // Clamped to the task's size.
  // Recount one question at a time; greedy decoding does not depend on
  // what else is in the batch.
  int64_t correct = 0, tokens = 0;
  for (int64_t i = 0; i < 6; ++i) {
    GenerateRequest r;
    r.input_ids = (*task)->prompt_ids(i);
    r.sampling.temperature = 0;
    r.stop.max_new_tokens = 12;
    auto one = (*engine)->Generate(r);
    ASSERT_TRUE(one.ok());
    correct += CorrectnessReward(one->samples[0].text,
                                 (*task)->example(i).gold) == 1.0;
    tokens += one->samples[0].token_ids.size();
  }
  EXPECT_EQ(result->correct, correct);
  EXPECT_DOUBLE_EQ(result->mean_completion_tokens, tokens / 6.0);
  EXPECT_FALSE(EvaluateTask(rollouts, **task, 0, 12).ok());
}

}  // namespace
}  // namespace rlrt
