#include "trainer_bridge/remote/generate_wire.h"

#include <limits>
#include <string>
#include <type_traits>

#include "sampler/server/api_json.h"

namespace rlrt {

using json = nlohmann::json;

namespace {

constexpr int64_t kMaxSamples = 1024;

}  // namespace

const json* JsonMember(const json& object, std::string_view key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

Status ValidateForGenerate(const GenerateRequest& r) {
  if (!r.messages.empty())
    return InvalidArgumentError(
        "chat messages cannot be sent to /generate; send text or input_ids");
  if (r.on_token)
    return InvalidArgumentError(
        "token callbacks (streaming) are not supported by RolloutClient");
  if (r.text.empty() == r.input_ids.empty())
    return InvalidArgumentError("give exactly one of text and input_ids");
  if (r.n < 1 || r.n > kMaxSamples)
    return InvalidArgumentError("n must be in [1, 1024], got " +
                                std::to_string(r.n));
  RETURN_IF_ERROR(ValidateSamplingParams(r.sampling));
  return ValidateStopConditions(r.stop);
}

json GenerateBody(const GenerateRequest& r) {
  json params = {{"temperature", r.sampling.temperature},
                 {"top_p", r.sampling.top_p},
                 {"top_k", r.sampling.top_k},
                 {"min_p", r.sampling.min_p},
                 {"max_new_tokens", r.stop.max_new_tokens},
                 {"stop", r.stop.stop_strings},
                 {"stop_token_ids", r.stop.stop_token_ids},
                 {"n", r.n},
                 {"ignore_eos", r.ignore_eos}};
  if (r.seed) params["seed"] = *r.seed;
  json body = {{"sampling_params", std::move(params)},
               {"return_logprob", r.return_logprobs}};
  if (r.input_ids.empty()) {
    body["text"] = r.text;
  } else {
    body["input_ids"] = r.input_ids;
  }
  if (!r.lora_name.empty()) body["lora_path"] = r.lora_name;
  return body;
}

namespace {

Status Malformed(std::string_view what) {
  return DataLossError("malformed /generate reply: " + std::string(what));
}

template <typename T>
StatusOr<T> ReadInt(const json& object, std::string_view key, T fallback) {
  const json* v = JsonMember(object, key);
  if (v == nullptr) return fallback;
  const bool fits =
      std::is_signed_v<T> ? v->is_number_integer() : v->is_number_unsigned();
  if (!fits) return Malformed(std::string(key) + " is not an integer");
  return v->get<T>();
}

StatusOr<std::vector<int32_t>> ReadTokenIds(const json& sample) {
  const json* ids = JsonMember(sample, "output_ids");
  if (ids == nullptr || !ids->is_array())
    return Malformed("output_ids is not an array");
  std::vector<int32_t> out;
  out.reserve(ids->size());
  for (const json& id : *ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() > std::numeric_limits<int32_t>::max())
      return Malformed("output_ids holds a non-token " + JsonText(id));
    out.push_back(id.get<int32_t>());
  }
  return out;
}

// [[logprob, token_id], ...], one per token, in token order.
StatusOr<std::vector<float>> ReadLogprobs(const json& meta,
                                          const std::vector<int32_t>& ids) {
  const json* pairs = JsonMember(meta, "output_token_logprobs");
  if (pairs == nullptr || !pairs->is_array() || pairs->size() != ids.size())
    return Malformed("output_token_logprobs is not one pair per token");
  std::vector<float> out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const json& p = (*pairs)[i];
    if (!p.is_array() || p.size() != 2 || !p[0].is_number() ||
        !p[1].is_number_integer() || p[1].get<int64_t>() != ids[i])
      return Malformed("output_token_logprobs[" + std::to_string(i) +
                       "] is not [logprob, " + std::to_string(ids[i]) + "]");
    out.push_back(static_cast<float>(p[0].get<double>()));
  }
  return out;
}

Status ReadFinishReason(const json& meta, SampleOutput& s) {
  const json* reason = JsonMember(meta, "finish_reason");
  if (reason == nullptr) return OkStatus();  // Unfinished (kNone).
  const json* type =
      reason->is_object() ? JsonMember(*reason, "type") : nullptr;
  if (type == nullptr || !type->is_string())
    return Malformed("finish_reason has no type");
  const std::string name = type->get<std::string>();
  for (FinishReason r :
       {FinishReason::kStop, FinishReason::kLength, FinishReason::kAbort}) {
    if (FinishReasonName(r) == name) s.finish_reason = r;
  }
  if (s.finish_reason == FinishReason::kNone)
    return Malformed("unknown finish_reason \"" + name + "\"");
  if (const json* matched = JsonMember(*reason, "matched")) {
    if (matched->is_string()) {
      s.matched_stop_string = matched->get<std::string>();
    } else if (matched->is_number_integer()) {
      s.matched_stop_token = matched->get<int32_t>();
    } else {
      return Malformed("finish_reason.matched is neither text nor a token");
    }
  }
  return OkStatus();
}

// Exact per-token versions when the server sent them (with logprobs);
// otherwise, see the header: first token min, the others max.
Status ReadWeightVersions(const json& meta, SampleOutput& s) {
  if (s.token_ids.empty()) return OkStatus();
  const json* per_token = JsonMember(meta, "output_token_weight_versions");
  if (per_token != nullptr && per_token->is_array() &&
      per_token->size() == s.token_ids.size()) {
    s.weight_versions.clear();
    for (const json& v : *per_token) {
      if (!v.is_number_unsigned())
        return Malformed("output_token_weight_versions holds a non-version");
      s.weight_versions.push_back(v.get<uint64_t>());
    }
    return OkStatus();
  }
  const json* range = JsonMember(meta, "weight_versions");
  if (range == nullptr || !range->is_array() || range->size() != 2 ||
      !(*range)[0].is_number_unsigned() || !(*range)[1].is_number_unsigned())
    return Malformed("weight_versions is not [min, max]");
  const uint64_t lo = (*range)[0].get<uint64_t>();
  const uint64_t hi = (*range)[1].get<uint64_t>();
  s.weight_versions.assign(s.token_ids.size(), hi);
  s.weight_versions.front() = lo;
  return OkStatus();
}

StatusOr<SampleOutput> ReadSample(const json& sample, bool logprobs) {
  if (!sample.is_object()) return Malformed("a sample is not an object");
  const json* meta = JsonMember(sample, "meta_info");
  if (meta == nullptr || !meta->is_object())
    return Malformed("meta_info is not an object");
  SampleOutput s;
  ASSIGN_OR_RETURN(s.token_ids, ReadTokenIds(sample));
  if (const json* text = JsonMember(sample, "text")) {
    if (!text->is_string()) return Malformed("text is not a string");
    s.text = text->get<std::string>();
  }
  if (logprobs) {
    ASSIGN_OR_RETURN(s.logprobs, ReadLogprobs(*meta, s.token_ids));
  }
  RETURN_IF_ERROR(ReadFinishReason(*meta, s));
  RETURN_IF_ERROR(ReadWeightVersions(*meta, s));
  ASSIGN_OR_RETURN(s.seed, ReadInt<uint64_t>(*meta, "seed", 0));
  return s;
}

}  // namespace

StatusOr<GenerateResult> ReadGenerateReply(const json& reply,
                                           const GenerateRequest& request) {
  const json samples = reply.is_array() ? reply : json::array({reply});
  if (samples.size() != static_cast<size_t>(request.n))
    return Malformed(std::to_string(samples.size()) +
                     " samples for n = " + std::to_string(request.n));
  GenerateResult result;
  for (const json& sample : samples) {
    ASSIGN_OR_RETURN(SampleOutput s,
                     ReadSample(sample, request.return_logprobs));
    result.completion_tokens += static_cast<int64_t>(s.token_ids.size());
    result.samples.push_back(std::move(s));
  }
  const json& meta = *JsonMember(samples.front(), "meta_info");
  ASSIGN_OR_RETURN(result.prompt_tokens,
                   ReadInt<int64_t>(meta, "prompt_tokens", 0));
  ASSIGN_OR_RETURN(result.cached_prompt_tokens,
                   ReadInt<int64_t>(meta, "cached_tokens", 0));
  if (const json* e2e = JsonMember(meta, "e2e_latency")) {
    if (!e2e->is_number()) return Malformed("e2e_latency is not a number");
    result.e2e_seconds = e2e->get<double>();
  }
  result.prompt_ids = request.input_ids;
  return result;
}

}  // namespace rlrt
