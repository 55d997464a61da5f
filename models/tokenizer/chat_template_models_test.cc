// The chat templates of the other model families, and which template a
// model gets. Expected strings were written by hand from the public Jinja
// templates: Qwen2-Instruct's tokenizer_config.json (ChatML with a default
// system message) and meta-llama/Llama-2-*-chat-hf's ("[INST]", "<<SYS>>",
// bos/eos "<s>"/"</s>", content.strip()).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "models/tokenizer/chat_template.h"
#include "models/tokenizer/test_data.h"

namespace rlrt {
namespace {

namespace fs = std::filesystem;

ChatTemplateOptions Options(bool add_generation_prompt,
                            bool enable_thinking = true) {
  ChatTemplateOptions o;
  o.add_generation_prompt = add_generation_prompt;
  o.enable_thinking = enable_thinking;
  return o;
}

std::string ChatMl(const std::vector<ChatMessage>& messages,
                   bool add_generation_prompt = true,
                   bool enable_thinking = true) {
  auto text = ApplyChatMlTemplate(
      messages, Options(add_generation_prompt, enable_thinking));
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

std::string Llama2(const std::vector<ChatMessage>& messages,
                   bool add_generation_prompt = true,
                   bool enable_thinking = true) {
  auto text = ApplyLlama2ChatTemplate(
      messages, Options(add_generation_prompt, enable_thinking));
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

// Fragments that identify the templates tokenizers ship (abridged by hand,
// enough for ChatTemplateFor, which only looks for their markers).
constexpr char kQwen2Template[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] "
    "!= 'system' %}{{ '<|im_start|>system\\nYou are a helpful "
    "assistant.<|im_end|>\\n' }}{% endif %}...";
constexpr char kQwen25Template[] =
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You "
    "are a helpful assistant.<|im_end|>\\n' }}...";
constexpr char kDeepSeekDistillTemplate[] =
    "{{ bos_token }}...{{'<\xEF\xBD\x9C"
    "User\xEF\xBD\x9C>' + "
    "message['content']}}...";
constexpr char kLlama2Template[] =
    "{% if messages[0]['role'] == 'system' %}...{% set content = "
    "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
    "message['content'] %}...{{ bos_token + '[INST] ' + content.strip() + "
    "' [/INST]' }}...";
constexpr char kLlama3Template[] =
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' "
    "}}...";
constexpr char kMistralTemplate[] =
    "{{ bos_token }}{% for message in messages %}{{ '[INST] ' + "
    "message['content'] + ' [/INST]' }}...";

// --- Qwen2 ChatML ---------------------------------------------------------

TEST(ChatMlTemplateTest, DefaultSystemMessageWhenTheFirstIsNotSystem) {
  EXPECT_EQ(ChatMl({{"user", "Hello", {}}}),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\n");
  // The default goes in front of whatever comes first, even an assistant.
  EXPECT_EQ(ChatMl({{"assistant", "A", {}}, {"user", "Q", {}}}, false),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>assistant\nA<|im_end|>\n"
            "<|im_start|>user\nQ<|im_end|>\n");
}

TEST(ChatMlTemplateTest, OwnSystemMessageAndMultipleTurns) {
  const std::vector<ChatMessage> messages = {{"system", "Be brief.", {}},
                                             {"user", "2+2?", {}},
                                             {"assistant", "4", {}},
                                             {"user", "3+3?", {}}};
  const std::string expected =
      "<|im_start|>system\nBe brief.<|im_end|>\n"
      "<|im_start|>user\n2+2?<|im_end|>\n"
      "<|im_start|>assistant\n4<|im_end|>\n"
      "<|im_start|>user\n3+3?<|im_end|>\n";
  EXPECT_EQ(ChatMl(messages, false), expected);
  EXPECT_EQ(ChatMl(messages, true), expected + "<|im_start|>assistant\n");
  // No thinking mode: no think block either way.
  EXPECT_EQ(ChatMl(messages, true, false),
            expected + "<|im_start|>assistant\n");
}

TEST(ChatMlTemplateTest, ContentIsRenderedAsIs) {
  // A think block is plain content (Qwen2 has no reasoning split), a later
  // system message is a turn like any other, whitespace is kept.
  EXPECT_EQ(ChatMl({{"user", " Q\n", {}},
                    {"assistant", "<think>r</think>a", {}},
                    {"system", "S", {}}},
                   false),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n Q\n<|im_end|>\n"
            "<|im_start|>assistant\n<think>r</think>a<|im_end|>\n"
            "<|im_start|>system\nS<|im_end|>\n");
}

TEST(ChatMlTemplateTest, RefusesWhatItCannotRender) {
  EXPECT_EQ(ApplyChatMlTemplate({}).status().code(),
            StatusCode::kInvalidArgument);
  const std::vector<ChatMessage> tool = {{"user", "Q", {}}, {"tool", "42", {}}};
  EXPECT_EQ(ApplyChatMlTemplate(tool).status().code(),
            StatusCode::kUnimplemented);
  const std::vector<ChatMessage> odd = {{"narrator", "x", {}}};
  EXPECT_EQ(ApplyChatMlTemplate(odd).status().code(),
            StatusCode::kInvalidArgument);
  // The template would drop the reasoning silently.
  const std::vector<ChatMessage> reasoning = {
      {"user", "Q", {}}, {"assistant", "A", std::string("R")}};
  auto refused = ApplyChatMlTemplate(reasoning);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("reasoning_content"),
            std::string::npos)
      << refused.status();
}

// --- Llama 2 chat ---------------------------------------------------------

TEST(Llama2TemplateTest, SystemMessageGoesIntoTheFirstInstruction) {
  EXPECT_EQ(Llama2({{"system", "Be brief.", {}}, {"user", "Hi", {}}}),
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
  EXPECT_EQ(Llama2({{"user", "Hi", {}}}), "<s>[INST] Hi [/INST]");
}

TEST(Llama2TemplateTest, TurnsAlternateWithBosAndEosAroundEachPair) {
  const std::vector<ChatMessage> messages = {{"system", "S", {}},
                                             {"user", "Q1", {}},
                                             {"assistant", "A1", {}},
                                             {"user", "Q2", {}}};
  const std::string expected =
      "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nQ1 [/INST] A1 </s>"
      "<s>[INST] Q2 [/INST]";
  EXPECT_EQ(Llama2(messages), expected);
  // No generation prompt of its own: the options change nothing here.
  EXPECT_EQ(Llama2(messages, false), expected);
  EXPECT_EQ(Llama2(messages, true, false), expected);
  // Ending with the answer (e.g. a training example) closes it with EOS.
  EXPECT_EQ(Llama2({{"user", "Q", {}}, {"assistant", "A", {}}}, false),
            "<s>[INST] Q [/INST] A </s>");
}

TEST(Llama2TemplateTest, ContentIsStrippedLikePythonStrip) {
  // strip() applies to the whole first instruction (system block included)
  // and to each answer, with Python's Unicode whitespace (here U+00A0 and
  // U+3000) but not to the system message inside the block.
  EXPECT_EQ(Llama2({{"system", "  S ", {}},
                    {"user", "Q \n\t", {}},
                    {"assistant",
                     "\n\xC2\xA0"
                     "A\xE3\x80\x80",
                     {}},
                    {"user", " \xE2\x80\x83Q2", {}}}),
            "<s>[INST] <<SYS>>\n  S \n<</SYS>>\n\nQ [/INST] A </s>"
            "<s>[INST] Q2 [/INST]");
  // An empty user turn after a system message strips into the block.
  EXPECT_EQ(Llama2({{"system", "S", {}}, {"user", "\n", {}}}),
            "<s>[INST] <<SYS>>\nS\n<</SYS>> [/INST]");
  // Non-whitespace (a zero-width space U+200B, an invalid byte) stays.
  EXPECT_EQ(Llama2({{"user", "\xE2\x80\x8BQ\xFF ", {}}}),
            "<s>[INST] \xE2\x80\x8BQ\xFF [/INST]");
}

TEST(Llama2TemplateTest, RefusesRolesThatDoNotAlternate) {
  const std::vector<std::vector<ChatMessage>> bad = {
      {{"assistant", "A", {}}},
      {{"system", "S", {}}, {"assistant", "A", {}}},
      {{"user", "Q1", {}}, {"user", "Q2", {}}},
      {{"user", "Q", {}}, {"assistant", "A", {}}, {"assistant", "B", {}}},
      // The template silently drops a system message in the assistant's
      // place; refused here.
      {{"user", "Q", {}}, {"system", "S", {}}},
      {{"system", "S1", {}}, {"system", "S2", {}}, {"user", "Q", {}}},
      {{"system", "S", {}}},
  };
  for (const auto& messages : bad) {
    auto text = ApplyLlama2ChatTemplate(messages, Options(false));
    EXPECT_EQ(text.status().code(), StatusCode::kInvalidArgument)
        << messages.size() << " messages, " << messages.back().role;
  }
  auto order = ApplyLlama2ChatTemplate(
      std::vector<ChatMessage>{{"user", "Q1", {}}, {"user", "Q2", {}}});
  EXPECT_NE(order.status().message().find("must alternate"), std::string::npos)
      << order.status();
}

TEST(Llama2TemplateTest, RefusesWhatItCannotRender) {
  EXPECT_EQ(ApplyLlama2ChatTemplate({}).status().code(),
            StatusCode::kInvalidArgument);
  const std::vector<ChatMessage> tool = {{"user", "Q", {}}, {"tool", "42", {}}};
  EXPECT_EQ(ApplyLlama2ChatTemplate(tool).status().code(),
            StatusCode::kUnimplemented);
  const std::vector<ChatMessage> reasoning = {
      {"user", "Q", {}}, {"assistant", "A", std::string("R")}};
  EXPECT_EQ(ApplyLlama2ChatTemplate(reasoning, Options(false)).status().code(),
            StatusCode::kInvalidArgument);
  // A generation prompt after the assistant's answer cannot be written.
  const std::vector<ChatMessage> answered = {{"user", "Q", {}},
                                             {"assistant", "A", {}}};
  EXPECT_EQ(ApplyLlama2ChatTemplate(answered, Options(true)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Llama2TemplateTest, EncodesWithOneBosPerInstruction) {
  // stories260K's tokenizer is a Llama 2 SentencePiece BPE with <s> = 1 and
  // </s> = 2 and a post-processor that puts <s> in front.
  const Tokenizer* tok = testing::StoriesTokenizer();
  ASSERT_NE(tok, nullptr);
  const std::string text = Llama2({{"system", "S", {}},
                                   {"user", "Q1", {}},
                                   {"assistant", "A1", {}},
                                   {"user", "Q2", {}}});
  const std::vector<int32_t> ids = tok->Encode(text);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_NE(ids[1], 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 2);  // Two [INST]s.
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 1);  // One answer.
  // Letting the post-processor add its BOS as well would double it.
  const std::vector<int32_t> doubled =
      tok->Encode(text, {.add_special_tokens = true});
  ASSERT_GE(doubled.size(), 2u);
  EXPECT_EQ(doubled[0], 1);
  EXPECT_EQ(doubled[1], 1);
}

// --- Choosing the template --------------------------------------------------

TEST(ChatTemplateForTest, QwenModelTypesDecideUnlessTheTokenizerDisagrees) {
  const Tokenizer* qwen = testing::QwenTokenizer();
  ASSERT_NE(qwen, nullptr);
  EXPECT_EQ(ChatTemplateFor("qwen3", qwen), ChatTemplateKind::kQwen3);
  EXPECT_EQ(ChatTemplateFor("qwen3", std::nullopt), ChatTemplateKind::kQwen3);
  EXPECT_EQ(ChatTemplateFor("qwen3", kLlama2Template), ChatTemplateKind::kNone);

  EXPECT_EQ(ChatTemplateFor("qwen2", std::nullopt), ChatTemplateKind::kChatMl);
  EXPECT_EQ(ChatTemplateFor("qwen2", kQwen2Template),
            ChatTemplateKind::kChatMl);
  // model_type qwen2 with another template: Qwen2.5's default system
  // message differs, the DeepSeek-R1 distillations are not ChatML, and
  // Qwen3's template has no default system message.
  EXPECT_EQ(ChatTemplateFor("qwen2", kQwen25Template), ChatTemplateKind::kNone);
  EXPECT_EQ(ChatTemplateFor("qwen2", kDeepSeekDistillTemplate),
            ChatTemplateKind::kNone);
  EXPECT_EQ(ChatTemplateFor("qwen2", qwen), ChatTemplateKind::kNone);
}

TEST(ChatTemplateForTest, LlamaNeedsALlama2ChatTemplate) {
  const Tokenizer* stories = testing::StoriesTokenizer();
  ASSERT_NE(stories, nullptr);
  EXPECT_EQ(stories->chat_template(), std::nullopt);
  EXPECT_EQ(ChatTemplateFor("llama", stories), ChatTemplateKind::kNone);
  EXPECT_EQ(ChatTemplateFor("llama", nullptr), ChatTemplateKind::kNone);
  EXPECT_EQ(ChatTemplateFor("llama", kLlama2Template),
            ChatTemplateKind::kLlama2);
  EXPECT_EQ(ChatTemplateFor("llama", kLlama3Template), ChatTemplateKind::kNone);
  EXPECT_EQ(ChatTemplateFor("llama", kMistralTemplate),
            ChatTemplateKind::kNone);
  EXPECT_EQ(ChatTemplateFor("llama", ""), ChatTemplateKind::kNone);
  EXPECT_EQ(ChatTemplateFor("mistral", kLlama2Template),
            ChatTemplateKind::kNone);
  EXPECT_EQ(ChatTemplateFor("", std::nullopt), ChatTemplateKind::kNone);
}

TEST(ChatTemplateForTest, ApplyChatTemplateDispatchesByKind) {
  const std::vector<ChatMessage> messages = {{"system", "S", {}},
                                             {"user", "Q", {}}};
  const ChatTemplateOptions options = Options(true, false);
  EXPECT_EQ(*ApplyChatTemplate(ChatTemplateKind::kQwen3, messages, options),
            *ApplyQwen3ChatTemplate(messages, options));
  EXPECT_EQ(*ApplyChatTemplate(ChatTemplateKind::kChatMl, messages, options),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(*ApplyChatTemplate(ChatTemplateKind::kLlama2, messages, options),
            "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nQ [/INST]");
  auto none = ApplyChatTemplate(ChatTemplateKind::kNone, messages, options);
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(ChatTemplateKindName(ChatTemplateKind::kQwen3), "qwen3");
  EXPECT_EQ(ChatTemplateKindName(ChatTemplateKind::kChatMl), "chatml");
  EXPECT_EQ(ChatTemplateKindName(ChatTemplateKind::kLlama2), "llama2");
  EXPECT_EQ(ChatTemplateKindName(ChatTemplateKind::kNone), "none");
}

TEST(ChatTemplateForTest, TheRefusalSaysWhatToDo) {
  const Status none = NoChatTemplateError("llama", false);
  EXPECT_EQ(none.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(none.message().find(
                "model 'llama' has no chat template known to this runtime"),
            std::string::npos)
      << none;
  EXPECT_NE(none.message().find("send a plain prompt"), std::string::npos);
  EXPECT_NE(none.message().find("has no chat template)"), std::string::npos);
  const Status other = NoChatTemplateError("qwen2", true);
  EXPECT_NE(other.message().find("not one this runtime renders"),
            std::string::npos)
      << other;
}

// --- The template tokenizer files ship ------------------------------------

class ShippedTemplateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("rlrt_chat_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    fs::copy_file(testing::StoriesDir() / "tokenizer.json",
                  dir_ / "tokenizer.json");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary) << content;
  }
  StatusOr<std::unique_ptr<Tokenizer>> LoadWithConfig(nlohmann::json config) {
    config["bos_token"] = "<s>";
    config["eos_token"] = "</s>";
    Write("tokenizer_config.json", config.dump());
    return LoadTokenizer(dir_);
  }

  fs::path dir_;
};

TEST_F(ShippedTemplateTest, QwenTokenizerShipsItsTemplate) {
  const Tokenizer* qwen = testing::QwenTokenizer();
  ASSERT_NE(qwen, nullptr);
  ASSERT_TRUE(qwen->chat_template().has_value());
  EXPECT_NE(qwen->chat_template()->find("enable_thinking"), std::string::npos);
}

TEST_F(ShippedTemplateTest, AStringOrTheDefaultOfANamedList) {
  auto tok = LoadWithConfig({{"chat_template", kLlama2Template}});
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->chat_template(), kLlama2Template);
  EXPECT_EQ(ChatTemplateFor("llama", tok->get()), ChatTemplateKind::kLlama2);

  using nlohmann::json;
  const json tool_use = json::object({{"name", "tool_use"}, {"template", "t"}});
  tok = LoadWithConfig(
      {{"chat_template",
        json::array(
            {tool_use, json::object({{"name", "default"},
                                     {"template", kLlama2Template}})})}});
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->chat_template(), kLlama2Template);

  // Named templates without a default: Hugging Face will not pick one.
  tok = LoadWithConfig({{"chat_template", json::array({tool_use})}});
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->chat_template(), "");
  EXPECT_EQ(ChatTemplateFor("llama", tok->get()), ChatTemplateKind::kNone);

  tok = LoadWithConfig({{"chat_template", nullptr}});
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->chat_template(), std::nullopt);
}

TEST_F(ShippedTemplateTest, ChatTemplateJinjaBesideTheConfig) {
  Write("chat_template.jinja", kLlama2Template);
  auto tok = LoadWithConfig(nlohmann::json::object());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->chat_template(), kLlama2Template);
  // The config's own template wins.
  tok = LoadWithConfig({{"chat_template", kLlama3Template}});
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->chat_template(), kLlama3Template);
}

TEST_F(ShippedTemplateTest, MalformedTemplatesAreRefused) {
  using nlohmann::json;
  const std::vector<json> bad_values = {
      json(5), json::object(), json::array({5}),
      json::array({json::object({{"name", "default"}})})};
  for (const json& bad : bad_values) {
    auto tok = LoadWithConfig({{"chat_template", bad}});
    ASSERT_FALSE(tok.ok()) << bad;
    EXPECT_EQ(tok.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(tok.status().message().find("chat_template"), std::string::npos)
        << tok.status();
  }
}

}  // namespace
}  // namespace rlrt
