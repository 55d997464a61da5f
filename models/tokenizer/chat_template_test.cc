// Ladder step 9: the Qwen3 chat template. Expected strings were derived by
// hand from the Jinja template in Qwen3's tokenizer_config.json.
#include "models/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "models/tokenizer/test_data.h"

namespace rlrt {
namespace {

std::string Render(const std::vector<ChatMessage>& messages,
                   bool add_generation_prompt = true,
                   bool enable_thinking = true) {
  ChatTemplateOptions options;
  options.add_generation_prompt = add_generation_prompt;
  options.enable_thinking = enable_thinking;
  auto text = ApplyQwen3ChatTemplate(messages, options);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

TEST(ChatTemplateTest, SystemAndUserWithGenerationPrompt) {
  const std::vector<ChatMessage> messages = {{"system", "You are helpful.", {}},
                                             {"user", "What is 2+2?", {}}};
  const std::string base =
      "<|im_start|>system\nYou are helpful.<|im_end|>\n"
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
      "<|im_start|>assistant\n";
  EXPECT_EQ(Render(messages, true, true), base);
  EXPECT_EQ(Render(messages, true, false), base + "<think>\n\n</think>\n\n");
  // Without the generation prompt, enable_thinking changes nothing.
  EXPECT_EQ(Render(messages, false, false),
            base.substr(0, base.size() -
                               std::string("<|im_start|>assistant\n").size()));
}

TEST(ChatTemplateTest, NoSystemMessage) {
  EXPECT_EQ(Render({{"user", "Hi", {}}}),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, ReasoningOnlyAfterTheLastUserMessage) {
  const std::vector<ChatMessage> messages = {
      {"user", "Q1", {}},
      {"assistant", "<think>\nR1\n</think>\n\nA1", {}},
      {"user", "Q2", {}},
      {"assistant", "<think>R2</think>A2", {}}};
  EXPECT_EQ(Render(messages, false),
            "<|im_start|>user\nQ1<|im_end|>\n"
            "<|im_start|>assistant\nA1<|im_end|>\n"  // Earlier turn: stripped.
            "<|im_start|>user\nQ2<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nR2\n</think>\n\nA2<|im_end|>\n");
}

TEST(ChatTemplateTest, LastAssistantAlwaysShowsAThinkBlock) {
  // After the last user message: a middle turn without reasoning is plain,
  // the last one gets an (empty) think block.
  const std::vector<ChatMessage> messages = {
      {"user", "Q", {}}, {"assistant", "A1", {}}, {"assistant", "A2", {}}};
  EXPECT_EQ(Render(messages, false),
            "<|im_start|>user\nQ<|im_end|>\n"
            "<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nA2<|im_end|>\n");
}

TEST(ChatTemplateTest, ExplicitReasoningContent) {
  const std::vector<ChatMessage> messages = {
      {"user", "Q", {}}, {"assistant", "\nA", std::string("\nR\n")}};
  EXPECT_EQ(Render(messages, false),
            "<|im_start|>user\nQ<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nR\n</think>\n\nA<|im_end|>\n");
}

TEST(ChatTemplateTest, NestedThinkTagsFollowTheTemplateSplits) {
  // reasoning = text before the first </think>, after the last <think>;
  // content = text after the last </think>.
  const std::vector<ChatMessage> messages = {
      {"user", "Q", {}},
      {"assistant", "x<think>a<think>\nb\n</think>c</think>\n\nd", {}}};
  EXPECT_EQ(Render(messages, false),
            "<|im_start|>user\nQ<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nb\n</think>\n\nd<|im_end|>\n");
}

TEST(ChatTemplateTest, LaterSystemMessageAndToolResponseUser) {
  EXPECT_EQ(Render({{"user", "a", {}}, {"system", "b", {}}}, false),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>system\nb<|im_end|>\n");
  // A user message that only wraps a tool response is not the last query,
  // so the assistant turn before it keeps its reasoning.
  const std::vector<ChatMessage> messages = {
      {"user", "Q", {}},
      {"assistant", "<think>r</think>a", {}},
      {"user", "<tool_response>x</tool_response>", {}}};
  EXPECT_EQ(Render(messages, false),
            "<|im_start|>user\nQ<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nr\n</think>\n\na<|im_end|>\n"
            "<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n");
}

TEST(ChatTemplateTest, RefusesWhatItCannotRender) {
  EXPECT_EQ(ApplyQwen3ChatTemplate({}).status().code(),
            StatusCode::kInvalidArgument);
  const std::vector<ChatMessage> tool = {{"user", "Q", {}}, {"tool", "42", {}}};
  EXPECT_EQ(ApplyQwen3ChatTemplate(tool).status().code(),
            StatusCode::kUnimplemented);
  const std::vector<ChatMessage> odd = {{"narrator", "x", {}}};
  EXPECT_EQ(ApplyQwen3ChatTemplate(odd).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ChatTemplateTest, ParsesMessagesFromJson) {
  auto messages = ParseChatMessages(
      R"([{"role": "system", "content": "S"},
          {"role": "user", "content": "Q"},
          {"role": "assistant", "content": "A", "reasoning_content": "R"},
          {"role": "user", "content": "Q2", "reasoning_content": null}])");
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 4u);
  EXPECT_EQ((*messages)[0].role, "system");
  EXPECT_EQ((*messages)[1].content, "Q");
  EXPECT_EQ((*messages)[2].reasoning_content, "R");
  EXPECT_EQ((*messages)[3].reasoning_content, std::nullopt);

  for (const char* bad :
       {"not json", "{}", "[1]", R"([{"role": "user"}])",
        R"([{"role": "user", "content": 5}])",
        R"([{"role": "assistant", "content": "", "tool_calls": []}])"}) {
    EXPECT_FALSE(ParseChatMessages(bad).ok()) << bad;
  }
}

TEST(ChatTemplateTest, TemplateMarkersBecomeSingleQwenTokens) {
  const Tokenizer* tok = testing::QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  const std::string text = Render(
      {{"user", "Q", {}}, {"assistant", "<think>r</think>a", {}}}, true, false);
  const std::vector<int32_t> ids = tok->Encode(text);
  auto count = [&](int32_t id) {
    return std::count(ids.begin(), ids.end(), id);
  };
  EXPECT_EQ(count(151644), 3);  // <|im_start|>
  EXPECT_EQ(count(151645), 2);  // <|im_end|>
  EXPECT_EQ(count(151667), 2);  // <think>
  EXPECT_EQ(count(151668), 2);  // </think>
  auto back = tok->Decode(ids);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, text);
}

}  // namespace
}  // namespace rlrt
