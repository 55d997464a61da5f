#include "sampler/server/api_json.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlrt {
namespace {

using json = nlohmann::json;

// A parse must fail with InvalidArgument and say which field is wrong.
testing::AssertionResult RefusedNaming(const Status& status,
                                       const std::string& field) {
  if (status.ok()) return testing::AssertionFailure() << "accepted";
  if (status.code() != StatusCode::kInvalidArgument ||
      status.message().find(field) == std::string::npos) {
    return testing::AssertionFailure()
           << status << " (wanted InvalidArgument naming " << field << ")";
  }
  return testing::AssertionSuccess();
}

struct BadBody {
  const char* body;
  const char* field;  // Must appear in the error message.
};

template <typename Parse>
void ExpectAllRefused(Parse parse, const std::vector<BadBody>& cases) {
  for (const BadBody& c : cases) {
    EXPECT_TRUE(RefusedNaming(parse(json::parse(c.body)).status(), c.field))
        << c.body;
  }
}

// ---- /generate requests -----------------------------------------------------

TEST(ParseGenerateRequest, MapsEveryField) {
  auto parsed = ParseGenerateRequest(json::parse(R"({
      "text": "The capital of France is",
      "sampling_params": {"temperature": 0.5, "top_p": 0.75, "top_k": 40,
                          "min_p": 0.125, "max_new_tokens": 300,
                          "stop": ["\n", "END"], "stop_token_ids": [7, 151645],
                          "n": 8, "seed": 1234, "ignore_eos": true,
                          "skip_special_tokens": false},
      "return_logprob": true, "stream": true, "rid": "ignored"})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GenerateRequest& r = parsed->request;
  EXPECT_EQ(r.text, "The capital of France is");
  EXPECT_TRUE(r.input_ids.empty());
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_EQ(r.sampling.top_p, 0.75f);
  EXPECT_EQ(r.sampling.top_k, 40);
  EXPECT_EQ(r.sampling.min_p, 0.125f);
  EXPECT_EQ(r.stop.max_new_tokens, 300);
  EXPECT_EQ(r.stop.stop_strings, (std::vector<std::string>{"\n", "END"}));
  EXPECT_EQ(r.stop.stop_token_ids, (std::vector<int32_t>{7, 151645}));
  EXPECT_EQ(r.n, 8);
  EXPECT_EQ(r.seed, 1234u);
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_TRUE(r.return_logprobs);
  EXPECT_TRUE(parsed->stream);
}

TEST(ParseGenerateRequest, DefaultsAreTheEngines) {
  auto parsed =
      ParseGenerateRequest(json::parse(R"({"input_ids": [1, 2, 3]})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GenerateRequest& r = parsed->request;
  const GenerateRequest engine;
  EXPECT_EQ(r.input_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_TRUE(r.text.empty());
  EXPECT_EQ(r.sampling.temperature, engine.sampling.temperature);
  EXPECT_EQ(r.sampling.top_p, engine.sampling.top_p);
  EXPECT_EQ(r.sampling.top_k, engine.sampling.top_k);
  EXPECT_EQ(r.sampling.min_p, engine.sampling.min_p);
  EXPECT_EQ(r.stop.max_new_tokens, engine.stop.max_new_tokens);
  EXPECT_TRUE(r.stop.stop_strings.empty());
  EXPECT_TRUE(r.stop.stop_token_ids.empty());
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.seed.has_value());
  EXPECT_FALSE(r.ignore_eos);
  EXPECT_FALSE(r.return_logprobs);
  EXPECT_FALSE(parsed->stream);
}

TEST(ParseGenerateRequest, NullsMeanDefaultsAndTopKMinusOneMeansOff) {
  auto parsed = ParseGenerateRequest(json::parse(R"({
      "text": "x", "input_ids": null, "return_logprob": null,
      "sampling_params": {"temperature": null, "stop": null, "seed": null,
                          "top_k": -1, "stop_token_ids": null}})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->request.sampling.temperature, 1.0f);
  EXPECT_EQ(parsed->request.sampling.top_k, 0);
  EXPECT_FALSE(parsed->request.seed.has_value());
  EXPECT_FALSE(parsed->request.return_logprobs);
}

TEST(ParseGenerateRequest, SeedsCoverTheWholeUint64Range) {
  const auto seed_of = [](const char* body) {
    return ParseGenerateRequest(json::parse(body))->request.seed;
  };
  EXPECT_EQ(seed_of(R"({"text": "x",
                "sampling_params": {"seed": 18446744073709551615}})"),
            std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(seed_of(R"({"text": "x", "sampling_params": {"seed": -1}})"),
            std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(seed_of(R"({"text": "x", "sampling_params": {"seed": 0}})"), 0u);
}

TEST(ParseGenerateRequest, StringStopAndManyStops) {
  auto one = ParseGenerateRequest(
      json::parse(R"({"text": "x", "sampling_params": {"stop": "###"}})"));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->request.stop.stop_strings, std::vector<std::string>{"###"});
  // Only OpenAI caps stop strings at 4.
  auto many = ParseGenerateRequest(json::parse(
      R"({"text": "x", "sampling_params":
          {"stop": ["a", "b", "c", "d", "e", "f"]}})"));
  ASSERT_TRUE(many.ok()) << many.status();
  EXPECT_EQ(many->request.stop.stop_strings.size(), 6u);
}

TEST(ParseGenerateRequest, RefusesBadBodies) {
  ExpectAllRefused(
      ParseGenerateRequest,
      {
          {R"([{"text": "x"}])", "JSON object"},
          {R"("x")", "JSON object"},
          {R"({})", "exactly one of text and input_ids"},
          {R"({"text": "x", "input_ids": [1]})", "exactly one"},
          {R"({"text": 5})", "text"},
          {R"({"text": ["a", "b"]})", "text"},
          {R"({"text": ""})", "text"},
          {R"({"input_ids": []})", "input_ids"},
          {R"({"input_ids": "1 2"})", "input_ids"},
          {R"({"input_ids": [1, "2"]})", "input_ids[1]"},
          {R"({"input_ids": [1, -2]})", "input_ids[1]"},
          {R"({"input_ids": [1, 2.5]})", "input_ids[1]"},
          {R"({"input_ids": [[1, 2]]})", "input_ids[0]"},
          {R"({"input_ids": [3000000000]})", "input_ids[0]"},
          {R"({"text": "x", "sampling_params": []})", "sampling_params"},
          {R"({"text": "x", "return_logprob": "yes"})", "return_logprob"},
          {R"({"text": "x", "stream": 1})", "stream"},
      });
}

TEST(ParseGenerateRequest, RefusesBadSamplingParams) {
  // Each is the inside of "sampling_params" and the field it must name.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"("temperature": "hot")", "temperature"},
      {R"("temperature": -0.5)", "temperature"},
      {R"("temperature": 1e300)", "temperature"},
      {R"("top_p": 0)", "top_p"},
      {R"("top_p": 1.5)", "top_p"},
      {R"("min_p": 1)", "min_p"},
      {R"("top_k": -2)", "top_k"},
      {R"("top_k": 1.5)", "top_k"},
      {R"("max_new_tokens": 0)", "max_new_tokens"},
      {R"("max_new_tokens": -5)", "max_new_tokens"},
      {R"("max_new_tokens": "9")", "max_new_tokens"},
      {R"("max_new_tokens": 9.0)", "max_new_tokens"},
      {R"("max_new_tokens": 18446744073709551615)", "max_new_tokens"},
      {R"("stop": 5)", "stop"},
      {R"("stop": ["a", 1])", "stop"},
      {R"("stop": "")", "stop"},
      {R"("stop_token_ids": 5)", "stop_token_ids"},
      {R"("stop_token_ids": [-1])", "stop_token_ids[0]"},
      {R"("n": 0)", "n must be"},
      {R"("n": 1025)", "n must be"},
      {R"("n": 1000000000000)", "n must be"},
      {R"("n": "2")", "n must be"},
      {R"("seed": "1")", "seed"},
      {R"("seed": 1.5)", "seed"},
      {R"("ignore_eos": 1)", "ignore_eos"},
  };
  for (const auto& [params, field] : cases) {
    const std::string body =
        R"({"text": "x", "sampling_params": {)" + params + "}}";
    EXPECT_TRUE(
        RefusedNaming(ParseGenerateRequest(json::parse(body)).status(), field))
        << params;
  }
}

// ---- OpenAI requests --------------------------------------------------------

TEST(ParseCompletionsRequest, MapsEveryField) {
  auto parsed = ParseCompletionsRequest(json::parse(R"({
      "model": "qwen3-0.6b", "prompt": "Once upon a time",
      "max_tokens": 200, "temperature": 0.7, "top_p": 0.9, "n": 4,
      "stop": ["\n", "."], "seed": 42, "logprobs": 0, "stream": true,
      "echo": false, "top_k": 50, "min_p": 0.01, "ignore_eos": true,
      "stop_token_ids": [2], "user": "ignored", "frequency_penalty": 0})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GenerateRequest& r = parsed->request;
  EXPECT_EQ(parsed->model, "qwen3-0.6b");
  EXPECT_EQ(r.text, "Once upon a time");
  EXPECT_EQ(r.stop.max_new_tokens, 200);
  EXPECT_EQ(r.sampling.temperature, 0.7f);
  EXPECT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.n, 4);
  EXPECT_EQ(r.stop.stop_strings, (std::vector<std::string>{"\n", "."}));
  EXPECT_EQ(r.seed, 42u);
  EXPECT_TRUE(parsed->logprobs);
  EXPECT_TRUE(r.return_logprobs);
  EXPECT_TRUE(parsed->stream);
  EXPECT_EQ(r.sampling.top_k, 50);
  EXPECT_EQ(r.sampling.min_p, 0.01f);
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_EQ(r.stop.stop_token_ids, std::vector<int32_t>{2});
}

TEST(ParseCompletionsRequest, OpenAiDefaults) {
  auto parsed = ParseCompletionsRequest(json::parse(R"({"prompt": "hi"})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GenerateRequest& r = parsed->request;
  EXPECT_EQ(r.stop.max_new_tokens, 16);
  EXPECT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_EQ(r.sampling.min_p, 0.0f);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.seed.has_value());
  EXPECT_TRUE(r.stop.stop_strings.empty());
  EXPECT_FALSE(parsed->logprobs);
  EXPECT_FALSE(r.return_logprobs);
  EXPECT_FALSE(parsed->stream);
  EXPECT_EQ(parsed->model, "");
}

TEST(ParseCompletionsRequest, PromptForms) {
  const auto parse = [](const char* body) {
    auto parsed = ParseCompletionsRequest(json::parse(body));
    EXPECT_TRUE(parsed.ok()) << body << ": " << parsed.status();
    return parsed.ok() ? parsed->request : GenerateRequest{};
  };
  EXPECT_EQ(parse(R"({"prompt": [5, 6, 7]})").input_ids,
            (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(parse(R"({"prompt": [[8, 9]]})").input_ids,
            (std::vector<int32_t>{8, 9}));
  const GenerateRequest one_string = parse(R"({"prompt": ["hello"]})");
  EXPECT_EQ(one_string.text, "hello");
  EXPECT_TRUE(one_string.input_ids.empty());
  EXPECT_FALSE(ParseCompletionsRequest(
                   json::parse(R"({"prompt": "x", "logprobs": null})"))
                   ->logprobs);
  EXPECT_TRUE(
      ParseCompletionsRequest(json::parse(R"({"prompt": "x", "logprobs": 5})"))
          ->logprobs);
}

TEST(ParseCompletionsRequest, RefusesBadBodies) {
  ExpectAllRefused(
      ParseCompletionsRequest,
      {
          {R"([])", "JSON object"},
          {R"({})", "prompt is required"},
          {R"({"prompt": null})", "prompt is required"},
          {R"({"prompt": 5})", "prompt"},
          {R"({"prompt": ""})", "prompt"},
          {R"({"prompt": []})", "prompt"},
          {R"({"prompt": [""]})", "prompt"},
          {R"({"prompt": ["a", "b"]})", "one prompt per request"},
          {R"({"prompt": [[1], [2]]})", "one prompt per request"},
          {R"({"prompt": [1, "a"]})", "prompt[1]"},
          {R"({"prompt": [{"text": "a"}]})", "prompt[0]"},
          {R"({"prompt": "x", "max_tokens": 0})", "max_tokens"},
          {R"({"prompt": "x", "max_tokens": -1})", "max_tokens"},
          {R"({"prompt": "x", "max_tokens": "16"})", "max_tokens"},
          {R"({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]})", "stop"},
          {R"({"prompt": "x", "stop": {"a": 1}})", "stop"},
          {R"({"prompt": "x", "logprobs": -1})", "logprobs"},
          {R"({"prompt": "x", "logprobs": true})", "logprobs"},
          {R"({"prompt": "x", "echo": true})", "echo"},
          {R"({"prompt": "x", "echo": "no"})", "echo"},
          {R"({"prompt": "x", "model": 5})", "model"},
          {R"({"prompt": "x", "n": 5000})", "n must be"},
          {R"({"prompt": "x", "temperature": true})", "temperature"},
          {R"({"prompt": "x", "top_p": -1})", "top_p"},
          {R"({"prompt": "x", "stream": "true"})", "stream"},
      });
}

TEST(ParseChatCompletionsRequest, MapsEveryField) {
  auto parsed = ParseChatCompletionsRequest(json::parse(R"({
      "model": "m",
      "messages": [{"role": "system", "content": "Be brief."},
                   {"role": "user", "content": "2+2?"},
                   {"role": "assistant", "content": "4",
                    "reasoning_content": "add"},
                   {"role": "user", "content": "3+3?"}],
      "max_completion_tokens": 64, "temperature": 0, "top_p": 0.5, "n": 3,
      "stop": "\n", "seed": 7, "logprobs": true, "top_logprobs": 0,
      "stream": true, "top_k": 20, "min_p": 0.25,
      "chat_template_kwargs": {"enable_thinking": false, "other": 1},
      "presence_penalty": 0, "user": "ignored"})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GenerateRequest& r = parsed->request;
  EXPECT_EQ(parsed->model, "m");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].content, "Be brief.");
  EXPECT_EQ(r.messages[1].role, "user");
  EXPECT_EQ(r.messages[1].content, "2+2?");
  EXPECT_EQ(r.messages[2].role, "assistant");
  EXPECT_EQ(r.messages[2].content, "4");
  EXPECT_EQ(r.messages[2].reasoning_content, "add");
  EXPECT_EQ(r.messages[3].content, "3+3?");
  EXPECT_TRUE(r.text.empty());
  EXPECT_TRUE(r.input_ids.empty());
  EXPECT_EQ(r.stop.max_new_tokens, 64);
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.stop.stop_strings, std::vector<std::string>{"\n"});
  EXPECT_EQ(r.seed, 7u);
  EXPECT_TRUE(parsed->logprobs);
  EXPECT_TRUE(r.return_logprobs);
  EXPECT_TRUE(parsed->stream);
  EXPECT_EQ(r.sampling.top_k, 20);
  EXPECT_EQ(r.sampling.min_p, 0.25f);
  EXPECT_FALSE(r.chat_options.enable_thinking);
  EXPECT_TRUE(r.chat_options.add_generation_prompt);
}

// A chat body with one user message and `extra` fields (", "-prefixed).
json ChatBody(std::string_view extra) {
  std::string body = R"({"messages": [{"role": "user", "content": "hi"}])";
  body += extra;
  body += "}";
  return json::parse(body);
}

TEST(ParseChatCompletionsRequest, DefaultsAndMaxTokenFields) {
  const auto parse = [](std::string_view extra) {
    return ParseChatCompletionsRequest(ChatBody(extra));
  };
  auto plain = parse("");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->request.stop.max_new_tokens,
            StopConditions{}.max_new_tokens);
  EXPECT_EQ(plain->request.sampling.temperature, 1.0f);
  EXPECT_TRUE(plain->request.chat_options.enable_thinking);
  EXPECT_FALSE(plain->logprobs);
  EXPECT_FALSE(plain->stream);
  EXPECT_EQ(parse(R"(, "max_tokens": 33)")->request.stop.max_new_tokens, 33);
  EXPECT_EQ(parse(R"(, "max_tokens": 33, "max_completion_tokens": 44)")
                ->request.stop.max_new_tokens,
            44);
}

TEST(ParseChatCompletionsRequest, RefusesBadBodies) {
  ExpectAllRefused(
      ParseChatCompletionsRequest,
      {
          {R"(null)", "JSON object"},
          {R"({})", "messages is required"},
          {R"({"messages": "hi"})", "messages"},
          {R"({"messages": []})", "messages is empty"},
          {R"({"messages": [5]})", "messages"},
          {R"({"messages": [{"role": "user"}]})", "content"},
          {R"({"messages": [{"role": "user", "content": 5}]})", "content"},
          {R"({"messages": [{"role": "user", "content": null}]})", "content"},
          {R"({"messages": [{"role": "tool", "content": "x"}]})",
           "messages[0].role"},
          {R"({"messages": [{"role": "user", "content": "a"},
                            {"role": "robot", "content": "b"}]})",
           "messages[1].role"},
          {R"({"messages": [{"role": "assistant", "content": "x",
                             "tool_calls": []}]})",
           "tool_calls"},
      });
  const std::vector<std::pair<std::string, std::string>> fields = {
      {R"(, "logprobs": 1)", "logprobs"},
      {R"(, "top_logprobs": 2)", "top_logprobs"},
      {R"(, "top_logprobs": -1)", "top_logprobs"},
      {R"(, "chat_template_kwargs": 5)", "chat_template_kwargs"},
      {R"(, "chat_template_kwargs": {"enable_thinking": "no"})",
       "enable_thinking"},
      {R"(, "max_completion_tokens": 0)", "max_completion_tokens"},
      {R"(, "max_tokens": -3)", "max_tokens"},
      {R"(, "stop": ["a", "b", "c", "d", "e"])", "stop"},
      {R"(, "temperature": "x")", "temperature"},
      {R"(, "n": 0)", "n must be"},
      {R"(, "seed": [1])", "seed"},
  };
  for (const auto& [field, name] : fields) {
    EXPECT_TRUE(RefusedNaming(
        ParseChatCompletionsRequest(ChatBody(field)).status(), name))
        << field;
  }
}

// ---- Responses --------------------------------------------------------------

SampleOutput Sample(std::vector<int32_t> ids, std::string text,
                    std::vector<float> logprobs, std::vector<uint64_t> versions,
                    FinishReason reason, uint64_t seed) {
  SampleOutput s;
  s.token_ids = std::move(ids);
  s.text = std::move(text);
  s.logprobs = std::move(logprobs);
  s.weight_versions = std::move(versions);
  s.finish_reason = reason;
  s.seed = seed;
  return s;
}

// One sample that hit a stop string; a second that hit max_new_tokens.
GenerateResult TwoSamples() {
  GenerateResult r;
  r.id = 42;
  r.prompt_tokens = 5;
  r.cached_prompt_tokens = 4;
  r.completion_tokens = 5;
  r.e2e_seconds = 0.25;
  r.samples.push_back(Sample({11, 12, 13}, "Hello", {-0.5f, -0.25f, -1.0f},
                             {3, 4, 4}, FinishReason::kStop, 99));
  r.samples[0].matched_stop_string = "\n\n";
  r.samples.push_back(Sample({21, 22}, "Hi", {-2.0f, -0.125f}, {5, 4},
                             FinishReason::kLength, 100));
  return r;
}

GenerateResult OneSample() {
  GenerateResult r = TwoSamples();
  r.samples.resize(1);
  r.completion_tokens = 3;
  return r;
}

TEST(GenerateResponse, OneSampleWithLogprobs) {
  EXPECT_EQ(GenerateResponse(OneSample(), /*return_logprob=*/true),
            json::parse(R"({
      "text": "Hello", "output_ids": [11, 12, 13],
      "meta_info": {"id": "42", "prompt_tokens": 5, "completion_tokens": 3,
                    "cached_tokens": 4, "e2e_latency": 0.25, "seed": 99,
                    "finish_reason": {"type": "stop", "matched": "\n\n"},
                    "weight_version": 4, "weight_versions": [3, 4],
                    "output_token_logprobs":
                        [[-0.5, 11], [-0.25, 12], [-1.0, 13]],
                    "output_token_weight_versions": [3, 4, 4]}})"));
}

TEST(GenerateResponse, TwoSamplesWithoutLogprobs) {
  EXPECT_EQ(GenerateResponse(TwoSamples(), /*return_logprob=*/false),
            json::parse(R"([
      {"text": "Hello", "output_ids": [11, 12, 13],
       "meta_info": {"id": "42", "prompt_tokens": 5, "completion_tokens": 3,
                     "cached_tokens": 4, "e2e_latency": 0.25, "seed": 99,
                     "finish_reason": {"type": "stop", "matched": "\n\n"},
                     "weight_version": 4, "weight_versions": [3, 4]}},
      {"text": "Hi", "output_ids": [21, 22],
       "meta_info": {"id": "42", "prompt_tokens": 5, "completion_tokens": 2,
                     "cached_tokens": 4, "e2e_latency": 0.25, "seed": 100,
                     "finish_reason": {"type": "length", "length": 2},
                     "weight_version": 4, "weight_versions": [4, 5]}}])"));
}

TEST(GenerateResponse, StopTokenAndAbortWithoutTokens) {
  GenerateResult r = TwoSamples();
  r.samples[0].matched_stop_string.reset();
  r.samples[0].matched_stop_token = 151645;
  r.samples[1] = Sample({}, "", {}, {}, FinishReason::kAbort, 100);
  const json out = GenerateResponse(r, /*return_logprob=*/true);
  ASSERT_TRUE(out.is_array());
  EXPECT_EQ(out[0]["meta_info"]["finish_reason"],
            json::parse(R"({"type": "stop", "matched": 151645})"));
  const json& aborted = out[1]["meta_info"];
  EXPECT_EQ(aborted["finish_reason"], json::parse(R"({"type": "abort"})"));
  EXPECT_TRUE(aborted["weight_version"].is_null());
  EXPECT_TRUE(aborted["weight_versions"].is_null());
  EXPECT_EQ(aborted["output_token_logprobs"], json::array());
  EXPECT_EQ(aborted["output_token_weight_versions"], json::array());
  EXPECT_EQ(aborted["completion_tokens"], 0);
}

TEST(CompletionsResponse, TwoSamplesWithLogprobs) {
  OpenAiRequest request;
  request.logprobs = true;
  EXPECT_EQ(
      CompletionsResponse(TwoSamples(), request, "cmpl-1", 1700000000, "qwen3"),
      json::parse(R"({
      "id": "cmpl-1", "object": "text_completion", "created": 1700000000,
      "model": "qwen3",
      "choices": [
        {"index": 0, "text": "Hello", "finish_reason": "stop",
         "matched_stop": "\n\n", "weight_version": 4,
         "weight_versions": [3, 4],
         "logprobs": {"tokens": ["token_id:11", "token_id:12", "token_id:13"],
                      "token_logprobs": [-0.5, -0.25, -1.0],
                      "token_ids": [11, 12, 13]}},
        {"index": 1, "text": "Hi", "finish_reason": "length",
         "matched_stop": null, "weight_version": 4,
         "weight_versions": [4, 5],
         "logprobs": {"tokens": ["token_id:21", "token_id:22"],
                      "token_logprobs": [-2.0, -0.125],
                      "token_ids": [21, 22]}}],
      "usage": {"prompt_tokens": 5, "completion_tokens": 5,
                "total_tokens": 10,
                "prompt_tokens_details": {"cached_tokens": 4}}})"));
}

TEST(CompletionsResponse, WithoutLogprobsAndAbort) {
  GenerateResult r = OneSample();
  r.samples[0].finish_reason = FinishReason::kAbort;
  r.samples[0].matched_stop_string.reset();
  const json out = CompletionsResponse(r, OpenAiRequest{}, "c", 1, "m");
  ASSERT_EQ(out["choices"].size(), 1u);
  EXPECT_TRUE(out["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(out["choices"][0]["finish_reason"], "abort");
  EXPECT_EQ(out["usage"]["total_tokens"], 8);
}

TEST(ChatCompletionsResponse, OneSampleWithAndWithoutLogprobs) {
  OpenAiRequest request;
  EXPECT_EQ(ChatCompletionsResponse(OneSample(), request, "chatcmpl-9", 5, "m"),
            json::parse(R"({
      "id": "chatcmpl-9", "object": "chat.completion", "created": 5,
      "model": "m",
      "choices": [{"index": 0,
                   "message": {"role": "assistant", "content": "Hello"},
                   "finish_reason": "stop", "logprobs": null,
                   "matched_stop": "\n\n", "weight_version": 4,
                   "weight_versions": [3, 4]}],
      "usage": {"prompt_tokens": 5, "completion_tokens": 3,
                "total_tokens": 8,
                "prompt_tokens_details": {"cached_tokens": 4}}})"));
  request.logprobs = true;
  const json out =
      ChatCompletionsResponse(OneSample(), request, "chatcmpl-9", 5, "m");
  EXPECT_EQ(out["choices"][0]["logprobs"], json::parse(R"({"content": [
      {"token": "token_id:11", "token_id": 11, "logprob": -0.5,
       "bytes": null, "top_logprobs": []},
      {"token": "token_id:12", "token_id": 12, "logprob": -0.25,
       "bytes": null, "top_logprobs": []},
      {"token": "token_id:13", "token_id": 13, "logprob": -1.0,
       "bytes": null, "top_logprobs": []}]})"));
}

TEST(ApiJson, HttpStatusAndErrorBody) {
  EXPECT_EQ(HttpStatusFor(InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpStatusFor(OutOfRangeError("x")), 400);
  EXPECT_EQ(HttpStatusFor(FailedPreconditionError("x")), 400);
  EXPECT_EQ(HttpStatusFor(NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusFor(AlreadyExistsError("x")), 409);
  EXPECT_EQ(HttpStatusFor(AbortedError("x")), 409);
  EXPECT_EQ(HttpStatusFor(ResourceExhaustedError("x")), 429);
  EXPECT_EQ(HttpStatusFor(UnimplementedError("x")), 501);
  EXPECT_EQ(HttpStatusFor(UnavailableError("x")), 503);
  EXPECT_EQ(HttpStatusFor(InternalError("x")), 500);
  EXPECT_EQ(HttpStatusFor(DataLossError("x")), 500);
  EXPECT_EQ(ErrorBody(InvalidArgumentError("n must be >= 1")),
            json::parse(R"({"error": {"message": "n must be >= 1",
                                      "type": "invalid_request_error",
                                      "code": 400}})"));
  EXPECT_EQ(ErrorBody(UnavailableError("shutting down")),
            json::parse(R"({"error": {"message": "shutting down",
                                      "type": "server_error",
                                      "code": 503}})"));
}

TEST(ApiJson, SseFraming) {
  EXPECT_EQ(SseEvent(json::parse(R"({"a": [1, "x"]})")),
            "data: {\"a\":[1,\"x\"]}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
  // A model can emit invalid UTF-8; it must not make serialising throw.
  EXPECT_EQ(JsonText(json("ok\xff")), "\"ok\xEF\xBF\xBD\"");
  EXPECT_EQ(JsonText(json("\xC3\xA9")), "\"\xC3\xA9\"");
}

}  // namespace
}  // namespace rlrt
