// Ladder steps 3-5: published and derived Qwen2/Qwen3 id vectors.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "models/tokenizer/chat_template.h"
#include "models/tokenizer/test_data.h"
#include "models/tokenizer/tokenizer.h"

namespace rlrt {
namespace {

using testing::Ids;
using testing::QwenTokenizer;
using testing::ReadFileOrFail;
using testing::ReadJsonOrFail;
using testing::VectorsDir;

std::vector<std::string> SplitOn(const std::string& s, const std::string& sep) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(sep, pos);
    if (hit == std::string::npos) break;
    parts.push_back(s.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  parts.push_back(s.substr(pos));
  return parts;
}

TEST(QwenVectorsTest, LlamaCppQwen2Cases) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  std::vector<std::string> inputs =
      SplitOn(ReadFileOrFail(VectorsDir() / "ggml-vocab-qwen2.gguf.inp"),
              "\n__ggml_vocab_test__\n");
  ASSERT_EQ(inputs.back(), "");
  inputs.pop_back();
  std::vector<std::string> lines =
      SplitOn(ReadFileOrFail(VectorsDir() / "ggml-vocab-qwen2.gguf.out"), "\n");
  ASSERT_EQ(lines.back(), "");
  lines.pop_back();
  ASSERT_EQ(inputs.size(), 46u);
  ASSERT_EQ(lines.size(), inputs.size());
  EncodeOptions plain;
  plain.parse_special = false;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<int32_t> expected;
    std::istringstream in(lines[i]);
    for (int32_t id; in >> id;) expected.push_back(id);
    EXPECT_EQ(tok->Encode(inputs[i], plain), expected)
        << "case " << i << ": \"" << inputs[i] << "\"";
    auto text = tok->Decode(expected);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, inputs[i]) << "case " << i;
  }
}

TEST(QwenVectorsTest, TransformersIntegrationSequences) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  const nlohmann::json root =
      ReadJsonOrFail(VectorsDir() / "hf-transformers-qwen2-integration.json");
  ASSERT_EQ(root["cases"].size(), 3u);
  for (const auto& c : root["cases"]) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(tok->Encode(text), Ids(c["ids"])) << text;
  }
}

TEST(QwenVectorsTest, SpecialTokensAroundText) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Encode("<|im_start|>hello<|im_end|>"),
            (std::vector<int32_t>{151644, 14990, 151645}));
}

TEST(QwenVectorsTest, DerivedQwen3Cases) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  const nlohmann::json root =
      ReadJsonOrFail(VectorsDir() / "qwen3-derived-vectors.json");
  ASSERT_EQ(root["cases"].size(), 56u);
  for (const auto& c : root["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> ids = Ids(c["ids"]);
    EXPECT_EQ(tok->Encode(text), ids) << c["kind"] << ": " << text;
    auto decoded = tok->Decode(ids);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, text);
  }
}

TEST(QwenVectorsTest, DerivedChatPromptsMatchTheTemplate) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  const nlohmann::json root =
      ReadJsonOrFail(VectorsDir() / "qwen3-derived-vectors.json");
  std::string question;
  int checked = 0;
  for (const auto& c : root["cases"]) {
    if (c["kind"] == "gsm8k_test_question" && question.empty()) {
      question = c["text"].get<std::string>();
    }
  }
  ASSERT_FALSE(question.empty());
  const std::vector<ChatMessage> messages = {{"user", question, {}}};
  for (const auto& c : root["cases"]) {
    ChatTemplateOptions options;
    if (c["kind"] == "chat_prompt_default") {
      options.enable_thinking = true;
    } else if (c["kind"] == "chat_prompt_enable_thinking_false") {
      options.enable_thinking = false;
    } else {
      continue;
    }
    auto prompt = ApplyQwen3ChatTemplate(messages, options);
    ASSERT_TRUE(prompt.ok()) << prompt.status();
    EXPECT_EQ(*prompt, c["text"].get<std::string>());
    EXPECT_EQ(tok->Encode(*prompt), Ids(c["ids"]));
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST(QwenVectorsTest, VocabularyFacts) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 151669);
  EXPECT_EQ(tok->eos_id(), 151645);  // <|im_end|>
  EXPECT_EQ(tok->pad_id(), 151643);  // <|endoftext|>
  EXPECT_EQ(tok->bos_id(), std::nullopt);
  EXPECT_EQ(tok->TokenToId("<think>"), 151667);
  EXPECT_EQ(tok->TokenToId("\xC4\xA0world"), 1879);  // "Ġworld"
  EXPECT_EQ(tok->TokenToId("no such token"), std::nullopt);
  EXPECT_EQ(tok->IdToToken(198), "\xC4\x8A");  // "Ċ", the newline
  EXPECT_EQ(tok->IdToToken(151645), "<|im_end|>");
  EXPECT_EQ(tok->IdToToken(151669), std::nullopt);
  EXPECT_EQ(tok->IdToToken(-1), std::nullopt);
  EXPECT_TRUE(tok->IsSpecial(151643));
  EXPECT_TRUE(tok->IsSpecial(151645));
  EXPECT_FALSE(tok->IsSpecial(151667));  // <think> is added, not special.
  EXPECT_FALSE(tok->IsSpecial(198));
  EXPECT_FALSE(tok->IsSpecial(1 << 30));
}

TEST(QwenVectorsTest, ParseSpecialOffEncodesMarkersAsText) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  EncodeOptions plain;
  plain.parse_special = false;
  const std::vector<int32_t> ids = tok->Encode("<|im_end|><think>", plain);
  for (int32_t id : ids) EXPECT_LT(id, 151643);
  auto text = tok->Decode(ids);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "<|im_end|><think>");
}

TEST(QwenVectorsTest, SkipSpecialTokensKeepsAddedNonSpecialOnes) {
  const Tokenizer* tok = QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  const std::vector<int32_t> ids =
      tok->Encode("<|im_start|>assistant\n<think>x</think>ok<|im_end|>");
  auto kept = tok->Decode(ids, /*skip_special_tokens=*/false);
  auto skipped = tok->Decode(ids, /*skip_special_tokens=*/true);
  ASSERT_TRUE(kept.ok() && skipped.ok());
  EXPECT_EQ(*kept, "<|im_start|>assistant\n<think>x</think>ok<|im_end|>");
  EXPECT_EQ(*skipped, "assistant\n<think>x</think>ok");
}

}  // namespace
}  // namespace rlrt
