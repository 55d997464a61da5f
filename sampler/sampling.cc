#include "sampler/sampling.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/ops/log_softmax.h"

namespace rlrt {

class SamplingKernel {
 public:
  // The surviving tokens in id order, their tempered logits, and the parts
  // of their log-sum-exp.
  struct Distribution {
    int64_t size = 0;
    double max = 0;
    double log_sum = 0;
  };

  static StatusOr<Distribution> Build(const float* logits, int64_t vocab,
                                      const SamplingParams& p,
                                      SamplingScratch& s);
  static std::vector<int32_t>& ids(SamplingScratch& s) { return s.ids_; }
  static std::vector<float>& values(SamplingScratch& s) { return s.values_; }
};

namespace {

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from (seed, step) alone.
double Uniform(uint64_t seed, uint64_t step) {
  const uint64_t bits =
      Mix(Mix(seed) ^ (step * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

Status CheckLogits(const float* logits, int64_t vocab) {
  bool any_finite = false;
  for (int64_t i = 0; i < vocab; ++i) {
    // -inf is a legitimate mask; NaN and +inf mean the forward pass broke.
    if (std::isnan(logits[i]) || logits[i] == INFINITY) {
      return InvalidArgumentError("logit " + std::to_string(i) +
                                  " is not finite");
    }
    any_finite |= std::isfinite(logits[i]);
  }
  if (!any_finite) return InvalidArgumentError("every logit is -inf");
  return OkStatus();
}

}  // namespace

Status ValidateSamplingParams(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0) {
    return InvalidArgumentError("temperature must be finite and >= 0");
  }
  if (p.top_k < 0) return InvalidArgumentError("top_k must be >= 0 (0 = off)");
  if (!(p.top_p > 0 && p.top_p <= 1))
    return InvalidArgumentError("top_p must be in (0, 1]");
  if (!(p.min_p >= 0 && p.min_p < 1))
    return InvalidArgumentError("min_p must be in [0, 1)");
  return OkStatus();
}

SamplingScratch::SamplingScratch(int64_t vocab_size) {
  ids_.reserve(vocab_size);
  values_.reserve(vocab_size);
}

StatusOr<SamplingKernel::Distribution> SamplingKernel::Build(
    const float* logits, int64_t vocab, const SamplingParams& p,
    SamplingScratch& s) {
  std::vector<int32_t>& ids = s.ids_;
  std::vector<float>& z = s.values_;  // Tempered logits, indexed by token id.
  ids.clear();
  z.resize(vocab);
  const float inv_t = 1.0f / p.temperature;
  for (int64_t i = 0; i < vocab; ++i) {
    z[i] = logits[i] * inv_t;
    if (z[i] != -INFINITY) ids.push_back(static_cast<int32_t>(i));
  }
  // Descending by tempered logit, ties by lower id: a total order, so the
  // truncations below are well defined.
  auto more_likely = [&](int32_t a, int32_t b) {
    return z[a] > z[b] || (z[a] == z[b] && a < b);
  };

  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < ids.size()) {
    std::nth_element(ids.begin(), ids.begin() + p.top_k, ids.end(),
                     more_likely);
    ids.resize(p.top_k);
  }
  if (p.top_p < 1.0f) {
    double max = -INFINITY;
    for (int32_t i : ids) max = std::max<double>(max, z[i]);
    double sum = 0;
    for (int32_t i : ids) sum += std::exp(z[i] - max);
    // Tokens below eps carry less than (1 - top_p) / 2 of the mass in all,
    // so the nucleus is always complete before reaching them: dropping them
    // first keeps the sort small without changing the result.
    const double eps =
        (1.0 - p.top_p) / (2.0 * static_cast<double>(ids.size()));
    std::erase_if(ids,
                  [&](int32_t i) { return std::exp(z[i] - max) / sum < eps; });
    std::sort(ids.begin(), ids.end(), more_likely);
    double before = 0;
    size_t keep = 0;
    while (keep < ids.size() && before < p.top_p) {
      before += std::exp(z[ids[keep]] - max) / sum;
      ++keep;
    }
    ids.resize(std::max<size_t>(keep, 1));
  }
  if (p.min_p > 0.0f) {
    // p_i >= min_p * p_max  <=>  z_i >= z_max + log(min_p).
    float max = -INFINITY;
    for (int32_t i : ids) max = std::max(max, z[i]);
    const double cut =
        static_cast<double>(max) + std::log(static_cast<double>(p.min_p));
    std::erase_if(ids, [&](int32_t i) { return z[i] < cut; });
  }
  // Draws walk the survivors in id order, whatever selected them.
  std::sort(ids.begin(), ids.end());
  Distribution d;
  d.size = static_cast<int64_t>(ids.size());
  d.max = -INFINITY;
  for (int32_t i : ids) d.max = std::max<double>(d.max, z[i]);
  double sum = 0;
  for (int32_t i : ids) sum += std::exp(z[i] - d.max);
  d.log_sum = std::log(sum);
  return d;
}

StatusOr<SampledToken> SampleToken(const float* logits, int64_t vocab_size,
                                   const SamplingParams& params, uint64_t step,
                                   SamplingScratch& scratch) {
  RETURN_IF_ERROR(ValidateSamplingParams(params));
  if (vocab_size <= 0) return InvalidArgumentError("empty vocabulary");
  RETURN_IF_ERROR(CheckLogits(logits, vocab_size));
  if (params.temperature == 0.0f) {
    const int32_t token = ArgMax(logits, vocab_size);
    return SampledToken{token, TokenLogprob(logits, vocab_size, token)};
  }
  ASSIGN_OR_RETURN(const SamplingKernel::Distribution d,
                   SamplingKernel::Build(logits, vocab_size, params, scratch));
  const std::vector<int32_t>& ids = SamplingKernel::ids(scratch);
  const std::vector<float>& z = SamplingKernel::values(scratch);
  const double u = Uniform(params.seed, step);
  double cumulative = 0;
  int32_t chosen = ids.back();  // Rounding can leave u just above the total.
  for (int32_t i : ids) {
    cumulative += std::exp((z[i] - d.max) - d.log_sum);
    if (u < cumulative) {
      chosen = i;
      break;
    }
  }
  return SampledToken{chosen,
                      static_cast<float>((z[chosen] - d.max) - d.log_sum)};
}

StatusOr<float> SampledLogprob(const float* logits, int64_t vocab_size,
                               const SamplingParams& params, int32_t token,
                               SamplingScratch& scratch) {
  RETURN_IF_ERROR(ValidateSamplingParams(params));
  if (token < 0 || token >= vocab_size) {
    return InvalidArgumentError("token " + std::to_string(token) +
                                " outside the vocabulary");
  }
  RETURN_IF_ERROR(CheckLogits(logits, vocab_size));
  if (params.temperature == 0.0f)
    return TokenLogprob(logits, vocab_size, token);
  ASSIGN_OR_RETURN(const SamplingKernel::Distribution d,
                   SamplingKernel::Build(logits, vocab_size, params, scratch));
  const std::vector<int32_t>& ids = SamplingKernel::ids(scratch);
  if (!std::binary_search(ids.begin(), ids.end(), token)) return -INFINITY;
  const std::vector<float>& z = SamplingKernel::values(scratch);
  return static_cast<float>((z[token] - d.max) - d.log_sum);
}

}  // namespace rlrt
