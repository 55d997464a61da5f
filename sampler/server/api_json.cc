#include "sampler/server/api_json.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "models/tokenizer/chat_template.h"
#include "sampler/output_tracker.h"
#include "sampler/sampling.h"

namespace rlrt {
namespace {

using json = nlohmann::json;

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxSamples = 1024;
constexpr size_t kOpenAiMaxStops = 4;
constexpr int64_t kOpenAiDefaultMaxTokens = 16;

// ---- Reading fields ---------------------------------------------------------

// The value of `key`, or null when it is absent or JSON null.
const json* Field(const json& object, std::string_view key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

Status WrongType(std::string_view key, std::string_view what) {
  return InvalidArgumentError(std::string(key) + " must be " +
                              std::string(what));
}

StatusOr<int64_t> IntIn(const json& value, std::string_view key, int64_t lo,
                        int64_t hi) {
  if (!value.is_number_integer()) return WrongType(key, "an integer");
  if (value.is_number_unsigned() &&
      value.get<uint64_t>() > static_cast<uint64_t>(kMaxInt64)) {
    return InvalidArgumentError(std::string(key) + " is too large, got " +
                                value.dump());
  }
  const int64_t x = value.get<int64_t>();
  if (x >= lo && x <= hi) return x;
  const std::string range =
      hi == kMaxInt64
          ? ">= " + std::to_string(lo)
          : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return InvalidArgumentError(std::string(key) + " must be " + range +
                              ", got " + value.dump());
}

// The Read* functions leave `out` at its default when the field is unset.
template <typename T>
Status ReadInt(const json& object, std::string_view key, int64_t lo, int64_t hi,
               T& out) {
  const json* value = Field(object, key);
  if (value == nullptr) return OkStatus();
  ASSIGN_OR_RETURN(const int64_t x, IntIn(*value, key, lo, hi));
  out = static_cast<T>(x);
  return OkStatus();
}

Status ReadFloat(const json& object, std::string_view key, float& out) {
  const json* value = Field(object, key);
  if (value == nullptr) return OkStatus();
  if (!value->is_number()) return WrongType(key, "a number");
  // Out of float range becomes inf, which the range checks then refuse.
  out = static_cast<float>(value->get<double>());
  return OkStatus();
}

Status ReadBool(const json& object, std::string_view key, bool& out) {
  const json* value = Field(object, key);
  if (value == nullptr) return OkStatus();
  if (!value->is_boolean()) return WrongType(key, "true or false");
  out = value->get<bool>();
  return OkStatus();
}

Status ReadString(const json& object, std::string_view key, std::string& out) {
  const json* value = Field(object, key);
  if (value == nullptr) return OkStatus();
  if (!value->is_string()) return WrongType(key, "a string");
  out = value->get<std::string>();
  return OkStatus();
}

Status ReadSeed(const json& object, std::optional<uint64_t>& out) {
  const json* value = Field(object, "seed");
  if (value == nullptr) return OkStatus();
  if (!value->is_number_integer()) return WrongType("seed", "an integer");
  out = value->is_number_unsigned()
            ? value->get<uint64_t>()
            : static_cast<uint64_t>(value->get<int64_t>());
  return OkStatus();
}

StatusOr<std::vector<int32_t>> TokenIds(const json& value,
                                        std::string_view key) {
  if (!value.is_array()) return WrongType(key, "an array of token ids");
  std::vector<int32_t> ids;
  ids.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string where = std::string(key) + "[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(const int64_t id, IntIn(value[i], where, 0, kMaxInt32));
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

Status ReadStop(const json& object, size_t max_strings,
                std::vector<std::string>& out) {
  const json* value = Field(object, "stop");
  if (value == nullptr) return OkStatus();
  if (value->is_string()) {
    out = {value->get<std::string>()};
    return OkStatus();
  }
  const bool strings = value->is_array() &&
                       std::all_of(value->begin(), value->end(),
                                   [](const json& s) { return s.is_string(); });
  if (!strings) return WrongType("stop", "a string or an array of strings");
  if (value->size() > max_strings) {
    return InvalidArgumentError("stop takes at most " +
                                std::to_string(max_strings) + " strings, got " +
                                std::to_string(value->size()));
  }
  out = value->get<std::vector<std::string>>();
  return OkStatus();
}

// The fields /generate's sampling_params and OpenAI's body share, by name.
Status ReadSamplingFields(const json& object, size_t max_stops,
                          GenerateRequest& r) {
  RETURN_IF_ERROR(ReadFloat(object, "temperature", r.sampling.temperature));
  RETURN_IF_ERROR(ReadFloat(object, "top_p", r.sampling.top_p));
  RETURN_IF_ERROR(ReadFloat(object, "min_p", r.sampling.min_p));
  RETURN_IF_ERROR(ReadInt(object, "top_k", -1, kMaxInt32, r.sampling.top_k));
  if (r.sampling.top_k == -1) r.sampling.top_k = 0;
  RETURN_IF_ERROR(ReadStop(object, max_stops, r.stop.stop_strings));
  if (const json* ids = Field(object, "stop_token_ids")) {
    ASSIGN_OR_RETURN(r.stop.stop_token_ids, TokenIds(*ids, "stop_token_ids"));
  }
  RETURN_IF_ERROR(ReadInt(object, "n", 1, kMaxSamples, r.n));
  RETURN_IF_ERROR(ReadSeed(object, r.seed));
  return ReadBool(object, "ignore_eos", r.ignore_eos);
}

Status ReadPromptIds(const json& value, std::string_view key,
                     std::vector<int32_t>& out) {
  ASSIGN_OR_RETURN(out, TokenIds(value, key));
  if (out.empty()) return InvalidArgumentError(std::string(key) + " is empty");
  return OkStatus();
}

Status ReadPromptText(const json& value, std::string_view key,
                      std::string& out) {
  if (!value.is_string()) return WrongType(key, "a string");
  out = value.get<std::string>();
  if (out.empty()) return InvalidArgumentError(std::string(key) + " is empty");
  return OkStatus();
}

Status RequireObject(const json& body) {
  if (!body.is_object()) {
    return InvalidArgumentError("the request body must be a JSON object");
  }
  return OkStatus();
}

// The engine's own checks, so a bad body fails before it reaches the engine.
Status ValidateRanges(const GenerateRequest& r) {
  RETURN_IF_ERROR(ValidateSamplingParams(r.sampling));
  return ValidateStopConditions(r.stop);
}

// nlohmann reports type mismatches by throwing; the readers check types
// first, so this is a backstop that keeps the no-exceptions contract.
template <typename T, typename Parse>
StatusOr<T> NoThrow(Parse parse, const json& body) {
  try {
    return parse(body);
  } catch (const json::exception& e) {
    return InvalidArgumentError(std::string("malformed request: ") + e.what());
  }
}

StatusOr<ParsedGenerate> ParseGenerate(const json& body) {
  RETURN_IF_ERROR(RequireObject(body));
  ParsedGenerate out;
  GenerateRequest& r = out.request;
  const json* text = Field(body, "text");
  const json* ids = Field(body, "input_ids");
  if ((text == nullptr) == (ids == nullptr)) {
    return InvalidArgumentError("give exactly one of text and input_ids");
  }
  if (text != nullptr) {
    RETURN_IF_ERROR(ReadPromptText(*text, "text", r.text));
  } else {
    RETURN_IF_ERROR(ReadPromptIds(*ids, "input_ids", r.input_ids));
  }
  if (const json* params = Field(body, "sampling_params")) {
    if (!params->is_object()) return WrongType("sampling_params", "an object");
    RETURN_IF_ERROR(ReadSamplingFields(*params, SIZE_MAX, r));
    RETURN_IF_ERROR(ReadInt(*params, "max_new_tokens", 1, kMaxInt64,
                            r.stop.max_new_tokens));
  }
  RETURN_IF_ERROR(ReadBool(body, "return_logprob", r.return_logprobs));
  RETURN_IF_ERROR(ReadBool(body, "stream", out.stream));
  // SGLang's per-request adapter: the name of a loaded adapter (never a
  // path: a client does not choose files on the server).
  RETURN_IF_ERROR(ReadString(body, "lora_path", r.lora_name));
  RETURN_IF_ERROR(ValidateRanges(r));
  return out;
}

Status ReadCompletionsPrompt(const json& body, GenerateRequest& r) {
  const json* prompt = Field(body, "prompt");
  if (prompt == nullptr) return InvalidArgumentError("prompt is required");
  // OpenAI's prompt may be a list of prompts; one of them is fine.
  if (prompt->is_array() && !prompt->empty() &&
      (prompt->front().is_string() || prompt->front().is_array())) {
    if (prompt->size() != 1) {
      return InvalidArgumentError(
          "prompt holds " + std::to_string(prompt->size()) +
          " prompts; send one prompt per request (batches are not supported)");
    }
    prompt = &prompt->front();
  }
  if (prompt->is_array()) return ReadPromptIds(*prompt, "prompt", r.input_ids);
  if (!prompt->is_string()) {
    return WrongType("prompt", "a string or an array of token ids");
  }
  return ReadPromptText(*prompt, "prompt", r.text);
}

Status ReadCompletionsFields(const json& body, OpenAiRequest& out) {
  RETURN_IF_ERROR(ReadCompletionsPrompt(body, out.request));
  // logprobs = k asks for the top k alternatives too; only the chosen
  // token's logprob is returned, whatever k.
  int64_t top = -1;
  RETURN_IF_ERROR(ReadInt(body, "logprobs", 0, kMaxInt64, top));
  out.logprobs = top >= 0;
  bool echo = false;
  RETURN_IF_ERROR(ReadBool(body, "echo", echo));
  if (echo) return InvalidArgumentError("echo is not supported");
  return OkStatus();
}

Status ReadMessages(const json& body, std::vector<ChatMessage>& out) {
  const json* messages = Field(body, "messages");
  if (messages == nullptr) return InvalidArgumentError("messages is required");
  if (!messages->is_array()) {
    return WrongType("messages", "an array of {role, content} objects");
  }
  if (messages->empty()) return InvalidArgumentError("messages is empty");
  StatusOr<std::vector<ChatMessage>> parsed =
      ParseChatMessages(messages->dump());
  if (!parsed.ok()) return parsed.status().WithContext("messages");
  for (size_t i = 0; i < parsed->size(); ++i) {
    const std::string& role = (*parsed)[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      return InvalidArgumentError("messages[" + std::to_string(i) +
                                  "].role must be system, user or "
                                  "assistant, got \"" +
                                  role + "\"");
    }
  }
  out = *std::move(parsed);
  return OkStatus();
}

Status ReadChatTemplateKwargs(const json& body, ChatTemplateOptions& out) {
  const json* kwargs = Field(body, "chat_template_kwargs");
  if (kwargs == nullptr) return OkStatus();
  if (!kwargs->is_object()) {
    return WrongType("chat_template_kwargs", "an object");
  }
  return ReadBool(*kwargs, "enable_thinking", out.enable_thinking);
}

Status ReadChatFields(const json& body, OpenAiRequest& out) {
  GenerateRequest& r = out.request;
  RETURN_IF_ERROR(ReadMessages(body, r.messages));
  // OpenAI's newer name for max_tokens; it wins when both are given.
  RETURN_IF_ERROR(ReadInt(body, "max_completion_tokens", 1, kMaxInt64,
                          r.stop.max_new_tokens));
  RETURN_IF_ERROR(ReadBool(body, "logprobs", out.logprobs));
  int64_t top_logprobs = 0;
  RETURN_IF_ERROR(ReadInt(body, "top_logprobs", 0, kMaxInt64, top_logprobs));
  if (top_logprobs > 0) {
    return InvalidArgumentError(
        "top_logprobs is not supported (only the chosen tokens' logprobs)");
  }
  return ReadChatTemplateKwargs(body, r.chat_options);
}

StatusOr<OpenAiRequest> ParseOpenAi(OpenAiApi api, const json& body) {
  RETURN_IF_ERROR(RequireObject(body));
  OpenAiRequest out;
  GenerateRequest& r = out.request;
  RETURN_IF_ERROR(ReadString(body, "model", out.model));
  RETURN_IF_ERROR(ReadSamplingFields(body, kOpenAiMaxStops, r));
  RETURN_IF_ERROR(ReadBool(body, "stream", out.stream));
  // Chat keeps the engine's default: see the header.
  if (api == OpenAiApi::kCompletions) {
    r.stop.max_new_tokens = kOpenAiDefaultMaxTokens;
  }
  RETURN_IF_ERROR(
      ReadInt(body, "max_tokens", 1, kMaxInt64, r.stop.max_new_tokens));
  RETURN_IF_ERROR(api == OpenAiApi::kCompletions
                      ? ReadCompletionsFields(body, out)
                      : ReadChatFields(body, out));
  r.return_logprobs = out.logprobs;
  RETURN_IF_ERROR(ValidateRanges(r));
  return out;
}

// ---- Writing responses ------------------------------------------------------

json FinishReasonOrNull(FinishReason reason) {
  if (reason == FinishReason::kNone) return nullptr;
  return std::string(FinishReasonName(reason));
}

json MatchedStop(const SampleOutput& s) {
  if (s.matched_stop_string) return *s.matched_stop_string;
  if (s.matched_stop_token) return *s.matched_stop_token;
  return nullptr;
}

void AddWeightVersions(const std::vector<uint64_t>& versions, json& out) {
  if (versions.empty()) {
    out["weight_version"] = nullptr;
    out["weight_versions"] = nullptr;
    return;
  }
  const auto [lo, hi] = std::minmax_element(versions.begin(), versions.end());
  out["weight_version"] = versions.back();
  out["weight_versions"] = json::array({*lo, *hi});
}

json SglangFinishReason(const SampleOutput& s) {
  if (s.finish_reason == FinishReason::kNone) return nullptr;
  json reason = {{"type", FinishReasonOrNull(s.finish_reason)}};
  json matched = MatchedStop(s);
  if (!matched.is_null()) {
    reason["matched"] = std::move(matched);
  } else if (s.finish_reason == FinishReason::kLength) {
    reason["length"] = s.token_ids.size();
  }
  return reason;
}

// One sample of a /generate response, without the request-wide fields.
json SglangSample(const SampleOutput& s, bool return_logprob) {
  json meta = {{"finish_reason", SglangFinishReason(s)},
               {"completion_tokens", s.token_ids.size()}};
  AddWeightVersions(s.weight_versions, meta);
  if (return_logprob) {
    json pairs = json::array();
    const size_t n = std::min(s.token_ids.size(), s.logprobs.size());
    for (size_t i = 0; i < n; ++i) {
      pairs.push_back(json::array({s.logprobs[i], s.token_ids[i]}));
    }
    meta["output_token_logprobs"] = std::move(pairs);
    // Per token, so a trainer knows exactly which tokens an update that
    // landed mid-completion affected.
    meta["output_token_weight_versions"] = s.weight_versions;
  }
  return {{"text", s.text}, {"output_ids", s.token_ids}, {"meta_info", meta}};
}

// vLLM's spelling of a token it does not detokenize.
std::string TokenName(int32_t id) { return "token_id:" + std::to_string(id); }

json OpenAiLogprobs(OpenAiApi api, const SampleOutput& s) {
  const size_t n = std::min(s.token_ids.size(), s.logprobs.size());
  if (api == OpenAiApi::kCompletions) {
    json tokens = json::array();
    for (size_t i = 0; i < n; ++i) tokens.push_back(TokenName(s.token_ids[i]));
    return {{"tokens", std::move(tokens)},
            {"token_logprobs",
             std::vector<float>(s.logprobs.begin(), s.logprobs.begin() + n)},
            {"token_ids", std::vector<int32_t>(s.token_ids.begin(),
                                               s.token_ids.begin() + n)}};
  }
  json content = json::array();
  for (size_t i = 0; i < n; ++i) {
    content.push_back({{"token", TokenName(s.token_ids[i])},
                       {"token_id", s.token_ids[i]},
                       {"logprob", s.logprobs[i]},
                       {"bytes", nullptr},
                       {"top_logprobs", json::array()}});
  }
  return {{"content", std::move(content)}};
}

// A whole sample, or (stream) the piece of one that a token event added.
json OpenAiChoice(OpenAiApi api, bool stream, int32_t index,
                  const SampleOutput& s, bool logprobs) {
  json choice = {{"index", index},
                 {"finish_reason", FinishReasonOrNull(s.finish_reason)},
                 {"logprobs", logprobs ? OpenAiLogprobs(api, s) : json()}};
  if (api == OpenAiApi::kCompletions) {
    choice["text"] = s.text;
  } else {
    choice[stream ? "delta" : "message"] = {{"role", "assistant"},
                                            {"content", s.text}};
  }
  if (!stream) choice["matched_stop"] = MatchedStop(s);
  AddWeightVersions(s.weight_versions, choice);
  return choice;
}

json OpenAiEnvelope(std::string_view object, const std::string& id,
                    int64_t created, const std::string& model) {
  return {
      {"id", id}, {"object", object}, {"created", created}, {"model", model}};
}

json OpenAiResponse(OpenAiApi api, const GenerateResult& result, bool logprobs,
                    const std::string& id, int64_t created,
                    const std::string& model) {
  json out = OpenAiEnvelope(
      api == OpenAiApi::kCompletions ? "text_completion" : "chat.completion",
      id, created, model);
  json choices = json::array();
  for (size_t i = 0; i < result.samples.size(); ++i) {
    choices.push_back(OpenAiChoice(api, /*stream=*/false,
                                   static_cast<int32_t>(i), result.samples[i],
                                   logprobs));
  }
  out["choices"] = std::move(choices);
  out["usage"] = {
      {"prompt_tokens", result.prompt_tokens},
      {"completion_tokens", result.completion_tokens},
      {"total_tokens", result.prompt_tokens + result.completion_tokens},
      {"prompt_tokens_details",
       {{"cached_tokens", result.cached_prompt_tokens}}}};
  return out;
}

}  // namespace

// ---- SGLang /generate -------------------------------------------------------

StatusOr<ParsedGenerate> ParseGenerateRequest(const json& body) {
  return NoThrow<ParsedGenerate>(ParseGenerate, body);
}

json GenerateResponse(const GenerateResult& result, bool return_logprob) {
  json all = json::array();
  for (const SampleOutput& s : result.samples) {
    json sample = SglangSample(s, return_logprob);
    json& meta = sample["meta_info"];
    meta["id"] = std::to_string(result.id);
    meta["prompt_tokens"] = result.prompt_tokens;
    meta["cached_tokens"] = result.cached_prompt_tokens;
    meta["e2e_latency"] = result.e2e_seconds;
    meta["seed"] = s.seed;
    if (result.samples.size() == 1) return sample;
    all.push_back(std::move(sample));
  }
  return all;
}

namespace {

// What one token event adds to a sample's output.
SampleOutput OneTokenOutput(const TokenEvent& event, bool with_logprob) {
  SampleOutput piece;
  piece.token_ids = {event.token};
  piece.text = std::string(event.text_delta);
  if (with_logprob) piece.logprobs = {event.logprob};
  piece.weight_versions = {event.weight_version};
  piece.finish_reason = event.finish_reason;
  return piece;
}

}  // namespace

json GenerateStream::Chunk(const TokenEvent& event) {
  Streamed& s = samples_[event.sample_index];
  ++s.tokens;
  s.lowest_version = std::min(s.lowest_version, event.weight_version);
  s.highest_version = std::max(s.highest_version, event.weight_version);
  s.last_version = event.weight_version;
  return ChunkFor(event.request_id, event.sample_index,
                  OneTokenOutput(event, return_logprob_));
}

json GenerateStream::FinishChunk(uint64_t request_id, int32_t sample_index,
                                 FinishReason reason) {
  SampleOutput delta;
  delta.finish_reason = reason;
  return ChunkFor(request_id, sample_index, delta);
}

json GenerateStream::ChunkFor(uint64_t request_id, int32_t sample_index,
                              const SampleOutput& delta) {
  const Streamed& s = samples_[sample_index];
  json chunk = SglangSample(delta, return_logprob_);
  chunk["index"] = sample_index;
  json& meta = chunk["meta_info"];
  meta["id"] = std::to_string(request_id);
  // Counts and versions are the sample's so far, not the chunk's.
  meta["completion_tokens"] = s.tokens;
  if (s.tokens > 0) {
    meta["weight_version"] = s.last_version;
    meta["weight_versions"] =
        json::array({s.lowest_version, s.highest_version});
  }
  if (delta.finish_reason == FinishReason::kLength)
    meta["finish_reason"]["length"] = s.tokens;
  return chunk;
}

// ---- OpenAI -----------------------------------------------------------------

StatusOr<OpenAiRequest> ParseCompletionsRequest(const json& body) {
  return NoThrow<OpenAiRequest>(
      [](const json& b) { return ParseOpenAi(OpenAiApi::kCompletions, b); },
      body);
}

StatusOr<OpenAiRequest> ParseChatCompletionsRequest(const json& body) {
  return NoThrow<OpenAiRequest>(
      [](const json& b) { return ParseOpenAi(OpenAiApi::kChat, b); }, body);
}

json CompletionsResponse(const GenerateResult& result,
                         const OpenAiRequest& request, const std::string& id,
                         int64_t created_unix_seconds,
                         const std::string& model) {
  return OpenAiResponse(OpenAiApi::kCompletions, result, request.logprobs, id,
                        created_unix_seconds, model);
}

json ChatCompletionsResponse(const GenerateResult& result,
                             const OpenAiRequest& request,
                             const std::string& id,
                             int64_t created_unix_seconds,
                             const std::string& model) {
  return OpenAiResponse(OpenAiApi::kChat, result, request.logprobs, id,
                        created_unix_seconds, model);
}

OpenAiStream::OpenAiStream(OpenAiApi api, bool logprobs, std::string id,
                           int64_t created_unix_seconds, std::string model)
    : api_(api),
      logprobs_(logprobs),
      id_(std::move(id)),
      created_(created_unix_seconds),
      model_(std::move(model)) {}

json OpenAiStream::Chunk(const TokenEvent& event) {
  return ChunkFor(event.sample_index, OneTokenOutput(event, logprobs_));
}

json OpenAiStream::FinishChunk(int32_t sample_index, FinishReason reason) {
  SampleOutput piece;
  piece.finish_reason = reason;
  return ChunkFor(sample_index, piece);
}

json OpenAiStream::ChunkFor(int32_t sample_index, const SampleOutput& piece) {
  json out =
      OpenAiEnvelope(api_ == OpenAiApi::kCompletions ? "text_completion"
                                                     : "chat.completion.chunk",
                     id_, created_, model_);
  json choice =
      OpenAiChoice(api_, /*stream=*/true, sample_index, piece, logprobs_);
  if (api_ == OpenAiApi::kChat && !role_sent_.insert(sample_index).second) {
    choice["delta"].erase("role");
  }
  out["choices"] = json::array({std::move(choice)});
  return out;
}

// ---- Errors and framing -----------------------------------------------------

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

json ErrorBody(const Status& status) {
  return ErrorBody(status, HttpStatusFor(status));
}

json ErrorBody(const Status& status, int http) {
  return {{"error",
           {{"message", status.message()},
            {"type", http < 500 ? "invalid_request_error" : "server_error"},
            {"code", http}}}};
}

std::string JsonText(const json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false,
                    json::error_handler_t::replace);
}

std::string SseEvent(const json& value) {
  return "data: " + JsonText(value) + "\n\n";
}

}  // namespace rlrt
