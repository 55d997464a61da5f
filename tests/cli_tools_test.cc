// Runs build/bin/score and build/bin/tokenize as a user would.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

using nlohmann::json;

struct Output {
  int exit_code = -1;
  std::string text;
};

Output RunCommand(const std::string& command) {
  Output out;
  FILE* pipe = popen((command + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) out.text += buf;
  const int status = pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

json ParseLine(const std::string& text) {
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

const std::string kStories = RLRT_SHARED_DIR "/models/stories260K";
const std::string kQwenTokenizer = RLRT_SHARED_DIR "/models/qwen3-tokenizer";

TEST(ScoreToolTest, Stories260KMatchesTheGoldenLogprobs) {
  std::ifstream in(kStories + "/reference.json");
  std::stringstream text;
  text << in.rdbuf();
  const json ref = json::parse(text.str(), nullptr, false)["greedy_from_bos"];
  const std::vector<int> ids(ref["ids"].begin(), ref["ids"].begin() + 12);
  std::string list;
  for (int id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  const std::string dump = ::testing::TempDir() + "/logits.f32";
  Output out = RunCommand(std::string(SCORE_PATH) + " --model_dir=" + kStories +
                          " --token_ids=" + list + " --dump_logits=" + dump);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  const json line = ParseLine(out.text);
  ASSERT_EQ(line["logprobs"].size(), ids.size() - 1);
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    EXPECT_NEAR(line["logprobs"][i].get<double>(),
                ref["logprob_of_each_next_token"][i].get<double>(), 1e-4);
    // Greedy ids: the argmax after position i is the next reference token.
    EXPECT_EQ(line["argmax"][i].get<int>(), ids[i + 1]);
  }
  std::ifstream logits(dump, std::ios::binary | std::ios::ate);
  EXPECT_EQ(static_cast<size_t>(logits.tellg()),
            ids.size() * 512 * sizeof(float));
}

TEST(ScoreToolTest, PresetWithDummyWeights) {
  Output out = RunCommand(std::string(SCORE_PATH) +
                          " --preset=qwen3-tiny --load_format=dummy --seed=3 "
                          "--token_ids=1,2,3,151000");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  const json line = ParseLine(out.text);
  EXPECT_EQ(line["vocab_size"], 151936);
  EXPECT_EQ(line["logprobs"].size(), 3u);
  for (const auto& lp : line["logprobs"]) EXPECT_LT(lp.get<double>(), 0.0);
}

TEST(ScoreToolTest, BadInputFailsCleanly) {
  for (const std::string& args : std::vector<std::string>{
           "--preset=qwen3-tiny --token_ids=1,2,999999",
           "--preset=qwen3-tiny --token_ids=1,x",
           "--preset=qwen3-tiny --token_ids=", "--preset=nope --token_ids=1",
           "--model_dir=/nonexistent --token_ids=1",
           "--preset=qwen3-tiny --load_format=safetensors --token_ids=1",
           "--preset=qwen3-tiny --model_dir=" + kStories + " --token_ids=1"}) {
    Output out = RunCommand(std::string(SCORE_PATH) + " " + args);
    EXPECT_EQ(out.exit_code, 1) << args << "\n" << out.text;
  }
}

// The PyTorch LoRA fixture (tests/reference/gen_lora_fixtures.py): score
// with the adapter unmerged, and with it merged into an exported checkpoint.
TEST(ScoreToolTest, LoraAdapterUnmergedAndMergedMatchPyTorch) {
  const std::string base = RLRT_SOURCE_DIR "/tests/reference/fixtures/llama";
  const std::string lora = base + "/lora_all7";
  std::ifstream in(lora + "/expected.json");
  std::stringstream text;
  text << in.rdbuf();
  const json want = json::parse(text.str(), nullptr, false)["cases"][2];
  std::string list;
  for (const auto& id : want["ids"])
    list += (list.empty() ? "" : ",") + std::to_string(id.get<int>());
  const std::string merged = ::testing::TempDir() + "/merged_lora";
  for (const std::string& extra : {std::string(), " --merge_lora=" + merged}) {
    Output out =
        RunCommand(std::string(SCORE_PATH) + " --model_dir=" + base +
                   " --lora_dir=" + lora + " --token_ids=" + list + extra);
    ASSERT_EQ(out.exit_code, 0) << extra << "\n" << out.text;
    const json line = ParseLine(out.text);
    ASSERT_EQ(line["logprobs"].size(), want["next_token_logprobs"].size());
    for (size_t i = 0; i < line["logprobs"].size(); ++i) {
      EXPECT_NEAR(line["logprobs"][i].get<double>(),
                  want["next_token_logprobs"][i].get<double>(), 1e-5)
          << extra << " " << i;
    }
  }
  // The exported checkpoint alone scores as base + adapter.
  Output out = RunCommand(std::string(SCORE_PATH) + " --model_dir=" + merged +
                          " --token_ids=" + list);
  ASSERT_EQ(out.exit_code, 0) << out.text;
  const json line = ParseLine(out.text);
  for (size_t i = 0; i < line["logprobs"].size(); ++i) {
    EXPECT_NEAR(line["logprobs"][i].get<double>(),
                want["next_token_logprobs"][i].get<double>(), 1e-5);
  }
  for (const std::string& args : std::vector<std::string>{
           "--model_dir=" + base + " --lora_dir=/nonexistent --token_ids=1",
           "--model_dir=" + base + " --merge_lora=" + merged + " --token_ids=1",
           "--model_dir=" + kStories + " --lora_dir=" + lora +
               " --token_ids=1"}) {
    EXPECT_EQ(RunCommand(std::string(SCORE_PATH) + " " + args).exit_code, 1)
        << args;
  }
}

TEST(TokenizeToolTest, EncodesDecodesAndAppliesTheChatTemplate) {
  Output enc = RunCommand(std::string(TOKENIZE_PATH) +
                          " --tokenizer_dir=" + kQwenTokenizer +
                          " --text='<|im_start|>hello<|im_end|>'");
  ASSERT_EQ(enc.exit_code, 0) << enc.text;
  EXPECT_EQ(ParseLine(enc.text)["ids"], json::parse("[151644, 14990, 151645]"));
  Output dec = RunCommand(std::string(TOKENIZE_PATH) + " --tokenizer_dir=" +
                          kQwenTokenizer + " --decode=151644,14990,151645");
  ASSERT_EQ(dec.exit_code, 0);
  EXPECT_EQ(ParseLine(dec.text)["text"], "<|im_start|>hello<|im_end|>");

  const std::string chat = ::testing::TempDir() + "/chat.json";
  std::ofstream(chat) << R"([{"role":"user","content":"2+2?"}])";
  Output templ = RunCommand(
      std::string(TOKENIZE_PATH) + " --tokenizer_dir=" + kQwenTokenizer +
      " --chat_json=" + chat + " --enable_thinking=false");
  ASSERT_EQ(templ.exit_code, 0) << templ.text;
  EXPECT_EQ(ParseLine(templ.text)["text"],
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>"
            "\n\n</think>\n\n");
}

TEST(TokenizeToolTest, BadInputFailsCleanly) {
  for (const std::string& args : std::vector<std::string>{
           "--tokenizer_dir=/nonexistent --text=a",
           "--tokenizer_dir=" + kQwenTokenizer + " --decode=1,x",
           "--tokenizer_dir=" + kQwenTokenizer + " --decode=999999",
           "--tokenizer_dir=" + kQwenTokenizer + " --chat_json=/nonexistent"}) {
    EXPECT_EQ(RunCommand(std::string(TOKENIZE_PATH) + " " + args).exit_code, 1)
        << args;
  }
}

}  // namespace
