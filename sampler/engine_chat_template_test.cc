// The engine renders chat requests with its own model's template (chosen
// from the model type and the tokenizer's template), and refuses them, before
// anything is queued, for a model without one. Expected prompts are written
// out by hand from the public templates (see chat_template.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "models/config/model_config.h"
#include "models/tokenizer/chat_template.h"
#include "sampler/engine.h"
#include "sampler/engine_test_util.h"

namespace rlrt {
namespace {

namespace fs = std::filesystem;

using testing::GoldenContinuation;
using testing::GreedyText;
using testing::MakeEngine;
using testing::MakeMesh;
using testing::StoriesOptions;

const fs::path kQwenTokenizerDir = RLRT_SHARED_DIR "/models/qwen3-tokenizer";

// A scratch directory for this test, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    path_ = fs::temp_directory_path() /
            ("rlrt_engine_chat_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void Write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
  }

 private:
  fs::path path_;
};

GenerateRequest Chat(std::vector<ChatMessage> messages, int64_t max_new) {
  GenerateRequest r;
  r.messages = std::move(messages);
  r.sampling.temperature = 0;
  r.stop.max_new_tokens = max_new;
  r.ignore_eos = true;
  return r;
}

TEST(EngineChatTemplateTest, ChatToALlamaWithoutATemplateIsRefusedUpFront) {
  auto mesh = MakeMesh(2);
  auto engine = MakeEngine(StoriesOptions(), mesh.get());
  ASSERT_NE(engine, nullptr);
  // stories260K is a base Llama: its tokenizer has no chat template.
  EXPECT_EQ(engine->chat_template(), ChatTemplateKind::kNone);
  EXPECT_EQ(nlohmann::json::parse(engine->ready_line())["chat_template"],
            "none");

  std::atomic<int> tokens{0};
  GenerateRequest chat = Chat({{"user", "Once upon a time", {}}}, 8);
  chat.on_token = [&](const TokenEvent&) { ++tokens; };
  auto refused = engine->Submit(chat);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find(
                "model 'llama' has no chat template known to this runtime"),
            std::string::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find("send a plain prompt"),
            std::string::npos);
  EXPECT_EQ(engine->Generate(chat).status().code(),
            StatusCode::kInvalidArgument);

  // A plain prompt still works, and is the first request the engine ever
  // took: the refused ones got no id and were never queued.
  const std::vector<int32_t> golden = GoldenContinuation();
  auto plain = engine->Generate(GreedyText("Once upon a time", golden.size()));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->id, 1u);
  EXPECT_EQ(plain->samples[0].token_ids, golden);
  EXPECT_EQ(tokens.load(), 0);
}

TEST(EngineChatTemplateTest,
     ALlama2ChatTokenizerGetsTheInstTemplateWithOneBos) {
  // stories260K's weights with its tokenizer, shipped with a Llama 2 chat
  // template (as meta-llama/Llama-2-*-chat-hf's tokenizer_config.json has).
  ScratchDir tokenizer;
  fs::copy_file(fs::path(testing::kStoriesDir) / "tokenizer.json",
                tokenizer.path() / "tokenizer.json");
  tokenizer.Write(
      "tokenizer_config.json",
      nlohmann::json{
          {"bos_token", "<s>"},
          {"eos_token", "</s>"},
          {"chat_template",
           "{% if messages[0]['role'] == 'system' %}...{% set content = "
           "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
           "message['content'] %}...{{ bos_token + '[INST] ' + "
           "content.strip() + ' [/INST]' }}..."}}
          .dump());
  EngineOptions o = StoriesOptions();
  o.tokenizer_dir = tokenizer.path().string();
  auto mesh = MakeMesh(2);
  auto engine = MakeEngine(o, mesh.get());
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->chat_template(), ChatTemplateKind::kLlama2);

  auto result = engine->Generate(Chat({{"system", "Be kind.", {}},
                                       {"user", "Tell a story. ", {}},
                                       {"assistant", "Once upon a time", {}},
                                       {"user", "More", {}}},
                                      8));
  ASSERT_TRUE(result.ok()) << result.status();
  const std::vector<int32_t> expected = engine->tokenizer()->Encode(
      "<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nTell a story. [/INST] Once "
      "upon a time </s><s>[INST] More [/INST]");
  EXPECT_EQ(result->prompt_ids, expected);
  // The template's own <s> is the only BOS in front (the post-processor's
  // is not added as well), one per instruction.
  ASSERT_GE(result->prompt_ids.size(), 2u);
  EXPECT_EQ(result->prompt_ids[0], 1);
  EXPECT_NE(result->prompt_ids[1], 1);
  EXPECT_EQ(std::count(result->prompt_ids.begin(), result->prompt_ids.end(), 1),
            2);
  EXPECT_EQ(result->samples[0].token_ids.size(), 8u);

  auto out_of_order =
      engine->Submit(Chat({{"user", "Q1", {}}, {"user", "Q2", {}}}, 8));
  EXPECT_EQ(out_of_order.status().code(), StatusCode::kInvalidArgument);
}

TEST(EngineChatTemplateTest, AQwen2ModelGetsChatMlNotTheQwen3Template) {
  // A tiny Qwen2 (dummy weights) with the Qwen vocabulary and a tokenizer
  // shipping Qwen2-Instruct's template.
  ScratchDir model;
  auto config = PresetConfig("qwen3-tiny");
  ASSERT_TRUE(config.ok()) << config.status();
  config->model_type = ModelType::kQwen2;
  config->attention_bias = true;
  config->qk_norm = false;
  model.Write("config.json", ModelConfigToJson(*config));
  fs::copy_file(kQwenTokenizerDir / "tokenizer.json",
                model.path() / "tokenizer.json");
  nlohmann::json tokenizer_config = nlohmann::json::parse(
      std::ifstream(kQwenTokenizerDir / "tokenizer_config.json"));
  tokenizer_config["chat_template"] =
      "{% for message in messages %}{% if loop.first and "
      "messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a "
      "helpful assistant.<|im_end|>\\n' }}{% endif %}...";
  model.Write("tokenizer_config.json", tokenizer_config.dump());

  EngineOptions o;
  o.model.model_dir = model.path().string();
  o.model.load_format = "dummy";
  o.max_total_tokens = 2048;
  o.context_length = 1024;
  auto mesh = MakeMesh(2);
  auto engine = MakeEngine(o, mesh.get());
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->config().model_type, ModelType::kQwen2);
  EXPECT_EQ(engine->chat_template(), ChatTemplateKind::kChatMl);

  GenerateRequest r = Chat({{"user", "你是谁", {}}}, 4);
  r.chat_options.enable_thinking = false;  // No think block for Qwen2.
  auto result = engine->Generate(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->prompt_ids,
            engine->tokenizer()->Encode(
                "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                "<|im_start|>user\n你是谁<|im_end|>\n"
                "<|im_start|>assistant\n"));
}

}  // namespace
}  // namespace rlrt
