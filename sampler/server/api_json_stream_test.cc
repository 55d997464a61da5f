// The streamed response writers of sampler/server/api_json.h: /generate
// increments and OpenAI chunks, built from token events.
#include <gtest/gtest.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "sampler/server/api_json.h"

namespace rlrt {
namespace {

using json = nlohmann::json;

TokenEvent Event(int32_t sample, int32_t token, float logprob, uint64_t version,
                 std::string_view delta,
                 FinishReason finish = FinishReason::kNone) {
  return TokenEvent{7, sample, token, logprob, version, delta, finish};
}

TEST(GenerateStream, ChunksCarryIncrementsAndTotals) {
  GenerateStream stream(/*return_logprob=*/true);
  const json a = stream.Chunk(Event(0, 11, -0.5f, 3, "He"));
  EXPECT_EQ(a, json::parse(R"({
      "index": 0, "text": "He", "output_ids": [11],
      "meta_info": {"id": "7", "completion_tokens": 1, "finish_reason": null,
                    "weight_version": 3, "weight_versions": [3, 3],
                    "output_token_logprobs": [[-0.5, 11]],
                    "output_token_weight_versions": [3]}})"));
  const json b = stream.Chunk(Event(1, 21, -2.0f, 3, "Yo"));
  EXPECT_EQ(b["index"], 1);
  EXPECT_EQ(b["text"], "Yo");
  EXPECT_EQ(b["output_ids"], json::array({21}));
  // A token whose text is held back (it may start a stop string).
  const json c = stream.Chunk(Event(0, 12, -0.25f, 4, ""));
  EXPECT_EQ(c["text"], "");
  EXPECT_EQ(c["output_ids"], json::array({12}));
  EXPECT_TRUE(c["meta_info"]["finish_reason"].is_null());
  const json d =
      stream.Chunk(Event(0, 13, -1.0f, 4, "llo", FinishReason::kStop));
  EXPECT_EQ(d, json::parse(R"({
      "index": 0, "text": "llo", "output_ids": [13],
      "meta_info": {"id": "7", "completion_tokens": 3,
                    "finish_reason": {"type": "stop"},
                    "weight_version": 4, "weight_versions": [3, 4],
                    "output_token_logprobs": [[-1.0, 13]],
                    "output_token_weight_versions": [4]}})"));
  const json e = stream.FinishChunk(7, 1, FinishReason::kAbort);
  EXPECT_EQ(e["index"], 1);
  EXPECT_EQ(e["text"], "");
  EXPECT_EQ(e["output_ids"], json::array());
  EXPECT_EQ(e["meta_info"]["completion_tokens"], 1);
  EXPECT_EQ(e["meta_info"]["weight_version"], 3);
  EXPECT_EQ(e["meta_info"]["finish_reason"],
            json::parse(R"({"type": "abort"})"));
}

// The quadratic growth the increments remove: 2000 tokens of 10 bytes each
// stream about 2000 * (10 + framing) bytes, not 2000^2 * 10 / 2.
TEST(GenerateStream, StreamSizeIsLinearInLength) {
  GenerateStream stream(/*return_logprob=*/false);
  size_t total = 0;
  for (int i = 0; i < 2000; ++i)
    total += stream.Chunk(Event(0, i, -1.0f, 1, "0123456789")).dump().size();
  EXPECT_LT(total, 2000u * 200u);
}

TEST(GenerateStream, LengthAndNoLogprobs) {
  GenerateStream stream(/*return_logprob=*/false);
  const json a = stream.Chunk(Event(0, 5, -1.0f, 1, "a"));
  EXPECT_FALSE(a["meta_info"].contains("output_token_logprobs"));
  const json b =
      stream.Chunk(Event(0, 6, -1.0f, 1, "b", FinishReason::kLength));
  EXPECT_EQ(b["meta_info"]["finish_reason"],
            json::parse(R"({"type": "length", "length": 2})"));
}

TEST(OpenAiStream, CompletionsChunksCarryDeltas) {
  OpenAiStream stream(OpenAiApi::kCompletions, /*logprobs=*/true, "cmpl-3", 123,
                      "m");
  const json a = stream.Chunk(Event(0, 11, -0.5f, 3, "He"));
  EXPECT_EQ(a, json::parse(R"({
      "id": "cmpl-3", "object": "text_completion", "created": 123,
      "model": "m",
      "choices": [{"index": 0, "text": "He", "finish_reason": null,
                   "weight_version": 3, "weight_versions": [3, 3],
                   "logprobs": {"tokens": ["token_id:11"],
                                "token_logprobs": [-0.5],
                                "token_ids": [11]}}]})"));
  const json b = stream.Chunk(Event(0, 12, -0.25f, 4, ""));
  EXPECT_EQ(b["choices"][0]["text"], "");
  EXPECT_TRUE(b["choices"][0]["finish_reason"].is_null());
  const json c =
      stream.Chunk(Event(0, 13, -1.0f, 4, "llo", FinishReason::kLength));
  EXPECT_EQ(c["choices"][0]["text"], "llo");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(c["choices"][0]["logprobs"]["token_ids"], json::array({13}));
}

TEST(OpenAiStream, ChatRoleOnlyInEachSamplesFirstChunk) {
  OpenAiStream stream(OpenAiApi::kChat, /*logprobs=*/false, "chatcmpl-4", 9,
                      "m");
  const std::vector<json> chunks = {
      stream.Chunk(Event(0, 11, -0.5f, 3, "He")),
      stream.Chunk(Event(1, 21, -2.0f, 3, "Yo")),
      stream.Chunk(Event(0, 12, -0.25f, 3, "llo", FinishReason::kStop)),
      stream.FinishChunk(1, FinishReason::kAbort),
  };
  EXPECT_EQ(chunks[0], json::parse(R"({
      "id": "chatcmpl-4", "object": "chat.completion.chunk", "created": 9,
      "model": "m",
      "choices": [{"index": 0,
                   "delta": {"role": "assistant", "content": "He"},
                   "finish_reason": null, "logprobs": null,
                   "weight_version": 3, "weight_versions": [3, 3]}]})"));
  const std::vector<int> index = {0, 1, 0, 1};
  const std::vector<bool> role = {true, true, false, false};
  const std::vector<std::string> content = {"He", "Yo", "llo", ""};
  const std::vector<json> finish = {nullptr, nullptr, "stop", "abort"};
  for (size_t i = 0; i < chunks.size(); ++i) {
    const json& choice = chunks[i]["choices"][0];
    EXPECT_EQ(chunks[i]["choices"].size(), 1u);
    EXPECT_EQ(choice["index"], index[i]) << i;
    EXPECT_EQ(choice["delta"].contains("role"), role[i]) << i;
    EXPECT_EQ(choice["delta"]["content"], content[i]) << i;
    EXPECT_EQ(choice["finish_reason"], finish[i]) << i;
  }
  EXPECT_TRUE(chunks[3]["choices"][0]["weight_version"].is_null());
}

// ---- Errors and framing -----------------------------------------------------

}  // namespace
}  // namespace rlrt
