#include "sampler/sampling.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/ops/fast_exp.h"
#include "models/ops/log_softmax.h"

namespace rlrt {

class SamplingKernel {
 public:
  // The surviving tokens and their weights exp(z - max), z the tempered
  // logits. When `all` is set every id below the vocabulary survives and
  // weights are indexed by id; otherwise ids lists the survivors in id order
  // and weights follow it.
  struct Distribution {
    bool all = false;
    int64_t size = 0;
    float max = 0;
    double sum = 0;
  };

  static StatusOr<Distribution> Build(const float* logits, int64_t vocab,
                                      const SamplingParams& p,
                                      SamplingScratch& s);
  static const std::vector<int32_t>& ids(const SamplingScratch& s) {
    return s.ids_;
  }
  static const std::vector<float>& z(const SamplingScratch& s) {
    return s.values_;
  }
  static const std::vector<float>& weights(const SamplingScratch& s) {
    return s.weights_;
  }
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
  // Branchless, so it vectorises: this runs on every token of every request.
  // -inf is a legitimate mask; NaN and +inf mean the forward pass broke.
  int bad = 0;
  int finite = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const float v = logits[i];
    bad |= (v != v) | (v == INFINITY);
    finite |= (v == v) & (v > -INFINITY) & (v < INFINITY);
  }
  if (bad) {
    for (int64_t i = 0; i < vocab; ++i) {
      if (std::isnan(logits[i]) || logits[i] == INFINITY) {
        return InvalidArgumentError("logit " + std::to_string(i) +
                                    " is not finite");
      }
    }
  }
  if (!finite) return InvalidArgumentError("every logit is -inf");
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
  weights_.reserve(vocab_size);
}

StatusOr<SamplingKernel::Distribution> SamplingKernel::Build(
    const float* logits, int64_t vocab, const SamplingParams& p,
    SamplingScratch& s) {
  std::vector<float>& z = s.values_;  // Tempered logits, indexed by token id.
  std::vector<float>& w = s.weights_;
  std::vector<int32_t>& ids = s.ids_;
  z.resize(vocab);
  const float inv_t = 1.0f / p.temperature;
  Distribution d;
  for (int64_t i = 0; i < vocab; ++i) z[i] = logits[i] * inv_t;
  d.max = ScaledMax(z.data(), vocab, 1.0f);
  const bool top_k = p.top_k > 0 && p.top_k < vocab;
  if (!top_k && p.top_p >= 1.0f && p.min_p <= 0.0f) {
    // No truncation: one vectorised pass, weights indexed by id. This is
    // the same sum log_softmax computes, so at temperature 1 the reported
    // logprob equals TokenLogprob's bit for bit.
    w.resize(vocab);
    d.all = true;
    d.size = vocab;
    d.sum = ExpShiftedSum(z.data(), vocab, 1.0f, d.max, w.data());
    return d;
  }
  ids.clear();
  for (int64_t i = 0; i < vocab; ++i) {
    if (z[i] != -INFINITY) ids.push_back(static_cast<int32_t>(i));
  }
  // Descending by tempered logit, ties by lower id: a total order, so the
  // truncations below are well defined.
  auto more_likely = [&](int32_t a, int32_t b) {
    return z[a] > z[b] || (z[a] == z[b] && a < b);
  };
  bool reordered = false;
  if (top_k && static_cast<size_t>(p.top_k) < ids.size()) {
    std::nth_element(ids.begin(), ids.begin() + p.top_k, ids.end(),
                     more_likely);
    ids.resize(p.top_k);
    reordered = true;
  }
  if (p.top_p < 1.0f) {
    float max = -INFINITY;
    for (int32_t i : ids) max = std::max(max, z[i]);
    double sum = 0;
    for (int32_t i : ids) sum += ExpNonPositive(z[i] - max);
    // Tokens below eps carry less than (1 - top_p) / 2 of the mass in all,
    // so the nucleus is always complete before reaching them: dropping them
    // first keeps the sort small without changing the result.
    const double eps =
        (1.0 - p.top_p) / (2.0 * static_cast<double>(ids.size()));
    std::erase_if(
        ids, [&](int32_t i) { return ExpNonPositive(z[i] - max) / sum < eps; });
    std::sort(ids.begin(), ids.end(), more_likely);
    double before = 0;
    size_t keep = 0;
    while (keep < ids.size() && before < p.top_p) {
      before += ExpNonPositive(z[ids[keep]] - max) / sum;
      ++keep;
    }
    ids.resize(std::max<size_t>(keep, 1));
    reordered = true;
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
  if (reordered) std::sort(ids.begin(), ids.end());
  d.size = static_cast<int64_t>(ids.size());
  d.max = -INFINITY;
  for (int32_t i : ids) d.max = std::max(d.max, z[i]);
  w.resize(ids.size());
  for (size_t j = 0; j < ids.size(); ++j)
    w[j] = ExpNonPositive(z[ids[j]] - d.max);
  double lanes[8] = {};
  AddToLanes(lanes, w.data(), d.size);
  d.sum = FoldLanes(lanes);
  return d;
}

namespace {

float LogprobOf(const SamplingKernel::Distribution& d, float z) {
  return static_cast<float>(static_cast<double>(z - d.max) - std::log(d.sum));
}

}  // namespace

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
  const std::vector<float>& w = SamplingKernel::weights(scratch);
  const std::vector<float>& z = SamplingKernel::z(scratch);
  // Walk the cumulative weights in id order to u * sum: first whole blocks
  // (each summed in a fixed order), then the ids inside the block that
  // crosses. Rounding can leave the target just above the total; the last
  // token with weight then wins.
  const double target = Uniform(params.seed, step) * d.sum;
  constexpr int64_t kBlock = 256;
  double cumulative = 0;
  int64_t block = 0;
  for (; block < d.size; block += kBlock) {
    const int64_t end = std::min(d.size, block + kBlock);
    // block is a multiple of 8: lanes take the same indices as in Build.
    double lanes[8] = {};
    AddToLanes(lanes, w.data() + block, end - block);
    const double block_sum = FoldLanes(lanes);
    if (target < cumulative + block_sum) break;
    cumulative += block_sum;
  }
  int64_t chosen = -1;
  if (block < d.size) {
    for (int64_t j = block; j < std::min(d.size, block + kBlock); ++j) {
      if (w[j] == 0.0f) continue;
      chosen = j;
      cumulative += w[j];
      if (target < cumulative) break;
    }
  } else {
    for (int64_t j = d.size - 1; j >= 0 && chosen < 0; --j) {
      if (w[j] != 0.0f) chosen = j;
    }
  }
  const int32_t token = d.all ? static_cast<int32_t>(chosen) : ids[chosen];
  return SampledToken{token, LogprobOf(d, z[token])};
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
  const float z = SamplingKernel::z(scratch)[token];
  if (d.all) return z == -INFINITY ? -INFINITY : LogprobOf(d, z);
  if (!std::binary_search(ids.begin(), ids.end(), token)) return -INFINITY;
  return LogprobOf(d, z);
}

}  // namespace rlrt
