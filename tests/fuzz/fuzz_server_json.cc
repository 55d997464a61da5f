// Fuzzes the rollout server's request parsers (sampler/server/api_json.h):
// the input is parsed as JSON without exceptions and fed to
// ParseGenerateRequest, ParseCompletionsRequest and
// ParseChatCompletionsRequest. Contract: nothing throws; a request is
// either refused with a 4xx status, or accepted with ranges the engine
// accepts and exactly one non-empty prompt. Accepted requests then go
// through the response writers (plain and streamed) with the raw input
// bytes as the model's text, since a model can emit any bytes and the
// writers must still produce JSON.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "sampler/output_tracker.h"
#include "sampler/sampling.h"
#include "sampler/server/api_json.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace rlrt::fuzz {
namespace {

using nlohmann::json;

void CheckRefusal(const Status& status) {
  FUZZ_CHECK(!status.ok(), "refusal without an error");
  const int http = HttpStatusFor(status);
  FUZZ_CHECK(http >= 400 && http < 500, "bad request answered %d: %s", http,
             status.ToString().c_str());
  const std::string body = JsonText(ErrorBody(status));
  FUZZ_CHECK(!json::parse(body, nullptr, false).is_discarded(),
             "error body is not JSON");
}

void CheckRequest(const GenerateRequest& r, bool chat) {
  FUZZ_CHECK(ValidateSamplingParams(r.sampling).ok(), "sampling params");
  FUZZ_CHECK(ValidateStopConditions(r.stop).ok(), "stop conditions");
  FUZZ_CHECK(r.n >= 1 && r.n <= 1024, "n = %d", r.n);
  const int prompts =
      !r.text.empty() + !r.input_ids.empty() + !r.messages.empty();
  FUZZ_CHECK(prompts == 1, "%d prompts", prompts);
  FUZZ_CHECK(chat == !r.messages.empty(), "prompt kind");
  for (int32_t id : r.input_ids) FUZZ_CHECK(id >= 0, "negative prompt id");
  for (const ChatMessage& m : r.messages) {
    FUZZ_CHECK(m.role == "system" || m.role == "user" || m.role == "assistant",
               "role");
  }
}

// A result as the engine would return it for `r`, with `text` as every
// sample's output.
GenerateResult FakeResult(const GenerateRequest& r, std::string_view text) {
  GenerateResult result;
  result.id = 42;
  result.prompt_ids = r.input_ids;
  result.prompt_tokens = static_cast<int64_t>(r.input_ids.size());
  const int32_t samples = std::min(r.n, 3);
  for (int32_t i = 0; i < samples; ++i) {
    SampleOutput s;
    s.text = std::string(text);
    const size_t tokens = i == 0 ? 0 : text.size() % 5 + 1;
    for (size_t k = 0; k < tokens; ++k) {
      s.token_ids.push_back(static_cast<int32_t>(k));
      if (r.return_logprobs) s.logprobs.push_back(-0.5f * k);
      s.weight_versions.push_back(k);
    }
    s.finish_reason = static_cast<FinishReason>(1 + i % 3);
    if (i == 1) s.matched_stop_string = std::string(text);
    if (i == 2) s.matched_stop_token = 7;
    s.seed = SampleSeed(r.seed.value_or(0), i);
    result.completion_tokens += static_cast<int64_t>(tokens);
    result.samples.push_back(std::move(s));
  }
  return result;
}

void CheckJson(const json& value, const char* what) {
  const std::string text = JsonText(value);
  FUZZ_CHECK(!json::parse(text, nullptr, false).is_discarded(),
             "%s is not JSON", what);
  FUZZ_CHECK(SseEvent(value).starts_with("data: "), "%s SSE framing", what);
}

void CheckStreams(const GenerateRequest& r, std::string_view text,
                  bool return_logprob) {
  GenerateStream generate(return_logprob);
  OpenAiStream completions(OpenAiApi::kCompletions, return_logprob, "id", 1,
                           "m");
  OpenAiStream chat(OpenAiApi::kChat, return_logprob, "id", 1, "m");
  const size_t half = text.size() / 2;
  const std::string_view pieces[] = {text.substr(0, half), text.substr(half)};
  for (int32_t sample = 0; sample < std::min(r.n, 2); ++sample) {
    for (size_t p = 0; p < 2; ++p) {
      TokenEvent event;
      event.request_id = 42;
      event.sample_index = sample;
      event.token = static_cast<int32_t>(p);
      event.logprob = -1.0f;
      event.text_delta = pieces[p];
      event.finish_reason = p == 1 ? FinishReason::kStop : FinishReason::kNone;
      CheckJson(generate.Chunk(event), "generate chunk");
      CheckJson(completions.Chunk(event), "completions chunk");
      CheckJson(chat.Chunk(event), "chat chunk");
    }
  }
  CheckJson(generate.FinishChunk(42, 5, FinishReason::kAbort), "finish chunk");
  CheckJson(chat.FinishChunk(5, FinishReason::kAbort), "finish chunk");
}

void Run(std::string_view input) {
  const json body = json::parse(input.begin(), input.end(), nullptr,
                                /*allow_exceptions=*/false);
  try {
    StatusOr<ParsedGenerate> generate = ParseGenerateRequest(body);
    if (!generate.ok()) {
      CheckRefusal(generate.status());
    } else {
      CheckRequest(generate->request, /*chat=*/false);
      const GenerateResult result = FakeResult(generate->request, input);
      CheckJson(GenerateResponse(result, generate->request.return_logprobs),
                "generate response");
      CheckStreams(generate->request, input, generate->request.return_logprobs);
    }

    StatusOr<OpenAiRequest> completions = ParseCompletionsRequest(body);
    if (!completions.ok()) {
      CheckRefusal(completions.status());
    } else {
      CheckRequest(completions->request, /*chat=*/false);
      CheckJson(CompletionsResponse(FakeResult(completions->request, input),
                                    *completions, "cmpl-1", 1, "m"),
                "completions response");
    }

    StatusOr<OpenAiRequest> chat = ParseChatCompletionsRequest(body);
    if (!chat.ok()) {
      CheckRefusal(chat.status());
    } else {
      CheckRequest(chat->request, /*chat=*/true);
      CheckJson(ChatCompletionsResponse(FakeResult(chat->request, input), *chat,
                                        "chatcmpl-1", 1, "m"),
                "chat response");
    }
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, "exception escaped: %s", e.what());
  }
}

}  // namespace
}  // namespace rlrt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rlrt::fuzz::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
