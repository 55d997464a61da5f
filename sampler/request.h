// What a caller asks the sampler engine for, and what it gets back.
//
// A request is one prompt and n samples of it (n > 1 is a GRPO group: the
// samples share the prompt's KV pages). Every sample has its own random
// stream, derived from the request's seed and the sample's index, so its
// tokens depend only on (seed, index, weights, prompt), never on what else
// is in the batch.
#ifndef RLRT_SAMPLER_REQUEST_H_
#define RLRT_SAMPLER_REQUEST_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/tokenizer/chat_template.h"
#include "sampler/output_tracker.h"
#include "sampler/sampling.h"

namespace rlrt {

// Streaming: called on the engine's scheduler thread after each token of a
// sample, so it must return quickly and must not call back into the engine
// (other than Abort).
struct TokenEvent {
  uint64_t request_id = 0;
  int32_t sample_index = 0;
  int32_t token = 0;
  float logprob = 0.0f;
  uint64_t weight_version = 0;
  std::string_view text_delta;  // Text this token completed (may be empty).
  FinishReason finish_reason = FinishReason::kNone;  // Set on the last one.
};
using TokenCallback = std::function<void(const TokenEvent&)>;

struct GenerateRequest {
  // The prompt: exactly one of text, chat messages (rendered by the chat
  // template) or token ids.
  std::string text;
  std::vector<ChatMessage> messages;
  ChatTemplateOptions chat_options;
  std::vector<int32_t> input_ids;

  // temperature, top_k, top_p, min_p. Its `seed` field is ignored: the
  // per-sample seeds come from `seed` below.
  SamplingParams sampling;
  // stop strings, stop token ids, max_new_tokens. The model's end-of-text
  // ids are added unless ignore_eos.
  StopConditions stop;
  bool ignore_eos = false;
  int32_t n = 1;
  // Without a seed the engine draws one; the result reports the seeds used.
  std::optional<uint64_t> seed;
  bool return_logprobs = false;
  TokenCallback on_token;
  // The resident LoRA adapter to run with (SamplerEngine::LoadAdapter, or
  // an adapter update); empty: the base model alone. Each token's
  // weight_version is then the adapter's version.
  std::string lora_name;
};

struct SampleOutput {
  std::vector<int32_t> token_ids;
  std::string text;
  // log p(token) under the distribution it was drawn from (after
  // temperature and truncation); empty unless return_logprobs.
  std::vector<float> logprobs;
  // The weight version whose forward pass produced each token.
  std::vector<uint64_t> weight_versions;
  FinishReason finish_reason = FinishReason::kNone;
  std::optional<std::string> matched_stop_string;
  std::optional<int32_t> matched_stop_token;
  uint64_t seed = 0;
};

struct GenerateResult {
  uint64_t id = 0;
  std::vector<int32_t> prompt_ids;
  int64_t prompt_tokens = 0;
  // Prompt tokens whose KV came from the prefix cache.
  int64_t cached_prompt_tokens = 0;
  int64_t completion_tokens = 0;  // Over all samples.
  std::vector<SampleOutput> samples;
  double queue_seconds = 0;  // Submission to admission.
  double first_token_seconds = 0;
  double e2e_seconds = 0;
};

// The seed of sample `index` of a request seeded with `seed`.
uint64_t SampleSeed(uint64_t seed, int32_t index);

}  // namespace rlrt

#endif  // RLRT_SAMPLER_REQUEST_H_
