// Choosing the next token from a row of logits, and the logprob of that
// choice under the distribution it was actually drawn from.
//
// Order (as Hugging Face and vLLM apply it; llama.cpp differs by applying
// temperature last): temperature, then top-k, then top-p, then min-p, then
// renormalise over the surviving tokens and draw. The reported logprob is
// log p(token) under that final, truncated, renormalised distribution, which
// is what an RL trainer's importance ratio needs; the trainer recomputes it
// with SampledLogprob from the same logits and parameters, so the two agree
// exactly when the logits do.
//
// Randomness is a pure function of (seed, step): a request's draws do not
// depend on what else is in the batch or on how many draws came before on
// the same thread.
#ifndef RLRT_SAMPLER_SAMPLING_H_
#define RLRT_SAMPLER_SAMPLING_H_

#include <cstdint>
#include <vector>

#include "base/status.h"

namespace rlrt {

struct SamplingParams {
  // 0 means greedy (argmax); otherwise logits are divided by it.
  float temperature = 1.0f;
  int32_t top_k = 0;   // Keep the k most likely tokens; 0 = off.
  float top_p = 1.0f;  // Keep the smallest set with this much mass; 1 = off.
  float min_p =
      0.0f;  // Drop tokens below min_p * the top probability; 0 = off.
  uint64_t seed = 0;
};

// temperature finite and >= 0; top_k >= 0; top_p in (0, 1]; min_p in [0, 1).
Status ValidateSamplingParams(const SamplingParams& params);

struct SampledToken {
  int32_t token = 0;
  // Under the distribution drawn from. Greedy draws from a point mass, whose
  // logprob (0) says nothing, so greedy reports the temperature-1 logprob.
  float logprob = 0.0f;
};

// Reusable per-thread buffers, so sampling allocates nothing in steady state.
class SamplingScratch {
 public:
  explicit SamplingScratch(int64_t vocab_size);

 private:
  friend class SamplingKernel;
  std::vector<int32_t> ids_;
  std::vector<float> values_;
  std::vector<float> weights_;
};

// `logits` has at least `vocab_size` entries; only ids below `vocab_size`
// can be drawn (the tokenizer's size, which may be smaller than the model's
// LM head). `step` numbers the draws of one request (0, 1, ...). Errors:
// invalid params, non-finite logits, a vocabulary of 0.
StatusOr<SampledToken> SampleToken(const float* logits, int64_t vocab_size,
                                   const SamplingParams& params, uint64_t step,
                                   SamplingScratch& scratch);

// log p(token) under the distribution SampleToken draws from with these
// parameters; -inf when the truncation removes the token.
StatusOr<float> SampledLogprob(const float* logits, int64_t vocab_size,
                               const SamplingParams& params, int32_t token,
                               SamplingScratch& scratch);

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SAMPLING_H_
