// The JSON side of the rollout HTTP server: request bodies to
// GenerateRequest, results and token events to response bodies. Two APIs:
//  - SGLang's native POST /generate, the one RL trainers (slime, verl) call;
//  - OpenAI's POST /v1/completions and /v1/chat/completions.
// Pure functions, no HTTP; nothing here throws (nlohmann's type errors are
// turned into InvalidArgument).
//
// Parsing rules shared by every endpoint:
//  - a field that is absent or JSON null takes its default (clients send
//    explicit nulls for "unset"); unknown fields are ignored;
//  - integer fields must be JSON integers (16.0 is refused, not rounded);
//  - top_k = -1 means off, as in SGLang and vLLM (the engine's 0);
//  - a negative seed (OpenAI's is an int64) wraps to uint64, so every seed
//    is accepted and distinct seeds stay distinct;
//  - n is in [1, 1024]; the engine's own checks (ValidateSamplingParams,
//    ValidateStopConditions) run here too, so a bad body fails before it
//    reaches the engine.
//
// Extension fields in responses: every sample/choice carries
// "weight_version" (the version that produced its last token) and
// "weight_versions" ([min, max] over its tokens; both null when it has no
// tokens), which an off-policy trainer needs. OpenAI choices also carry
// SGLang's "matched_stop". Finish reasons are "stop", "length" and "abort";
// OpenAI has no "abort", but mapping it to "stop" would tell a trainer that
// a truncated sample ended naturally, so "abort" is kept.
// Logprobs are those of the chosen tokens only; there are no token strings,
// so OpenAI's token fields use vLLM's "token_id:<id>" form.
#ifndef RLRT_SAMPLER_SERVER_API_JSON_H_
#define RLRT_SAMPLER_SERVER_API_JSON_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "base/status.h"
#include "sampler/request.h"

namespace rlrt {

// ---- SGLang /generate ------------------------------------------------------

struct ParsedGenerate {
  GenerateRequest request;
  bool stream = false;
};

// Exactly one of "text" (a string) and "input_ids" (token ids); optional
// "sampling_params" {temperature, top_p, top_k, min_p, max_new_tokens, stop
// (a string or strings), stop_token_ids, n, seed, ignore_eos}; top-level
// "return_logprob" and "stream"; "lora_path": the name of a loaded LoRA
// adapter to run with. Defaults are the engine's.
StatusOr<ParsedGenerate> ParseGenerateRequest(const nlohmann::json& body);

// {"text", "output_ids", "meta_info": {"id", "prompt_tokens",
// "completion_tokens", "cached_tokens", "finish_reason", "e2e_latency",
// "seed", "weight_version", "weight_versions", and with return_logprob
// "output_token_logprobs": [[logprob, token_id], ...]}} for one sample; an
// array of those, one per sample, when n > 1. finish_reason is {"type":
// "stop"|"length"|"abort"} plus "matched" (the stop string or token id) or
// "length" (the tokens generated).
nlohmann::json GenerateResponse(const GenerateResult& result,
                                bool return_logprob);

// Builds a streamed /generate response: one chunk per token event carrying
// only what is new for its sample ("text" and "output_ids" of that event,
// and its logprob and weight version when asked), so a stream's size grows
// with its length, not its square. Concatenating a sample's chunks gives
// the non-streamed output. SGLang instead repeats the whole output in each
// chunk; clients that expect that must concatenate. meta_info holds the
// sample's totals so far: "completion_tokens", "weight_version" (the
// latest) and "weight_versions" ([lowest, highest]); "index" is the sample
// and meta_info.finish_reason is null until the sample's last chunk. The
// streamed finish_reason has no "matched": token events do not say which
// stop matched.
class GenerateStream {
 public:
  explicit GenerateStream(bool return_logprob)
      : return_logprob_(return_logprob) {}

  nlohmann::json Chunk(const TokenEvent& event);
  // The last chunk of a sample that ends without a token event (an abort).
  nlohmann::json FinishChunk(uint64_t request_id, int32_t sample_index,
                             FinishReason reason);

 private:
  struct Streamed {
    int64_t tokens = 0;
    uint64_t lowest_version = UINT64_MAX;
    uint64_t highest_version = 0;
    uint64_t last_version = 0;
  };
  nlohmann::json ChunkFor(uint64_t request_id, int32_t sample_index,
                          const SampleOutput& delta);

  bool return_logprob_;
  std::map<int32_t, Streamed> samples_;  // What each sample has streamed.
};

// ---- OpenAI /v1/completions and /v1/chat/completions -----------------------

struct OpenAiRequest {
  GenerateRequest request;
  bool stream = false;
  bool logprobs = false;  // Of the chosen tokens.
  std::string model;      // As sent; empty when absent.
};

// "prompt": a string, token ids, or an array holding exactly one of those
// (several prompts per request are refused). "max_tokens" defaults to 16
// and "temperature" to 1, as in OpenAI; also "top_p", "n", "stop" (a string
// or up to 4), "seed", "logprobs" (an integer or null: any integer returns
// the chosen tokens' logprobs, no alternatives), "stream", and the
// extensions "top_k", "min_p", "ignore_eos", "stop_token_ids". "echo": true
// is refused.
StatusOr<OpenAiRequest> ParseCompletionsRequest(const nlohmann::json& body);

// "messages": a non-empty list of {role: system|user|assistant, content:
// string} (see ParseChatMessages). "max_completion_tokens" (preferred) or
// "max_tokens": absent means the engine's default, not OpenAI's "until the
// context is full", because the engine reserves KV for max_new_tokens up
// front. "logprobs" is a bool; "top_logprobs" > 0 is refused;
// "chat_template_kwargs": {"enable_thinking": bool}. The other sampling
// fields are as for completions.
StatusOr<OpenAiRequest> ParseChatCompletionsRequest(const nlohmann::json& body);

// {"id", "object": "text_completion", "created", "model", "choices": [{
// "index", "text", "finish_reason", "logprobs": null or {"tokens",
// "token_logprobs", "token_ids"}, ...}], "usage"}.
nlohmann::json CompletionsResponse(const GenerateResult& result,
                                   const OpenAiRequest& request,
                                   const std::string& id,
                                   int64_t created_unix_seconds,
                                   const std::string& model);

// {"id", "object": "chat.completion", "created", "model", "choices": [{
// "index", "message": {"role": "assistant", "content"}, "finish_reason",
// "logprobs": null or {"content": [{"token", "token_id", "logprob", ...}]},
// ...}], "usage"}.
nlohmann::json ChatCompletionsResponse(const GenerateResult& result,
                                       const OpenAiRequest& request,
                                       const std::string& id,
                                       int64_t created_unix_seconds,
                                       const std::string& model);

enum class OpenAiApi { kCompletions, kChat };

// Builds a streamed OpenAI response: one chunk per token event, whose single
// choice (index = the sample) holds the text that token added ("text" for
// completions; "delta": {"content"} for chat, plus "role": "assistant" in
// each sample's first chunk) and a finish_reason that is null until the
// sample's last chunk.
class OpenAiStream {
 public:
  OpenAiStream(OpenAiApi api, bool logprobs, std::string id,
               int64_t created_unix_seconds, std::string model);

  nlohmann::json Chunk(const TokenEvent& event);
  // The last chunk of a sample that ends without a token event (an abort).
  nlohmann::json FinishChunk(int32_t sample_index, FinishReason reason);

 private:
  nlohmann::json ChunkFor(int32_t sample_index, const SampleOutput& piece);

  OpenAiApi api_;
  bool logprobs_;
  std::string id_;
  int64_t created_;
  std::string model_;
  std::set<int32_t> role_sent_;  // Chat samples that have had a chunk.
};

// ---- Errors and framing -----------------------------------------------------

// The google.rpc HTTP mapping: InvalidArgument, OutOfRange and
// FailedPrecondition 400; NotFound 404; AlreadyExists and Aborted 409;
// ResourceExhausted 429 (a client may retry later); Unimplemented 501;
// Unavailable 503; anything else 500. (Status has no Unauthenticated.)
int HttpStatusFor(const Status& status);

// OpenAI's error body: {"error": {"message", "type": "invalid_request_error"
// (4xx) or "server_error" (5xx), "code": the HTTP status}}.
nlohmann::json ErrorBody(const Status& status);
// The same, with "code" the HTTP status the caller sends instead.
nlohmann::json ErrorBody(const Status& status, int http_status);

// Serialises without throwing: invalid UTF-8 (which a model can emit) is
// replaced by U+FFFD rather than failing the response.
std::string JsonText(const nlohmann::json& value);

// A server-sent event: "data: <json>\n\n".
std::string SseEvent(const nlohmann::json& value);
// Ends an OpenAI or SGLang stream.
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SERVER_API_JSON_H_
