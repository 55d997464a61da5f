#include "trainer_bridge/grpo_loss.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace rlrt {

StatusOr<LossAggregation> ParseLossAggregation(const std::string& name) {
  if (name == "sequence_mean") return LossAggregation::kSequenceMean;
  if (name == "token_mean") return LossAggregation::kTokenMean;
  if (name == "constant") return LossAggregation::kConstant;
  return InvalidArgumentError(
      "the loss aggregation must be sequence_mean, token_mean or constant, "
      "not '" +
      name + "'");
}

StatusOr<std::vector<double>> GroupAdvantages(std::span<const double> rewards,
                                              int64_t group_size,
                                              bool scale_by_std,
                                              double epsilon) {
  if (group_size < 1 || rewards.size() % group_size != 0) {
    return InvalidArgumentError(std::to_string(rewards.size()) +
                                " rewards do not split into groups of " +
                                std::to_string(group_size));
  }
  std::vector<double> advantages(rewards.size());
  for (size_t g = 0; g < rewards.size(); g += group_size) {
    double mean = 0;
    for (int64_t i = 0; i < group_size; ++i) mean += rewards[g + i];
    mean /= group_size;
    double var = 0;
    for (int64_t i = 0; i < group_size; ++i)
      var += (rewards[g + i] - mean) * (rewards[g + i] - mean);
    const double scale =
        scale_by_std ? 1.0 / (std::sqrt(var / group_size) + epsilon) : 1.0;
    for (int64_t i = 0; i < group_size; ++i)
      advantages[g + i] = (rewards[g + i] - mean) * scale;
  }
  return advantages;
}

LossCounts CountLossTerms(std::span<const CompletionTerms> completions,
                          const GrpoLossOptions& options) {
  LossCounts counts;
  for (const CompletionTerms& c : completions) {
    if (options.drop_truncated && c.truncated) continue;
    ++counts.sequences;
    counts.tokens += static_cast<int64_t>(c.logp.size());
  }
  return counts;
}

StatusOr<GrpoLossStats> GrpoLoss(std::span<const CompletionTerms> completions,
                                 const GrpoLossOptions& options,
                                 std::span<const std::span<float>> dlogp,
                                 std::optional<LossCounts> global) {
  if (dlogp.size() != completions.size())
    return InvalidArgumentError("one gradient span per completion is needed");
  if (!(options.epsilon >= 0) ||
      (options.epsilon_high && !(*options.epsilon_high >= 0)) ||
      !(options.beta >= 0) ||
      (options.aggregation == LossAggregation::kConstant &&
       !(options.constant_normalizer > 0))) {
    return InvalidArgumentError(
        "epsilon, epsilon_high and beta must be >= 0 and the constant "
        "normaliser > 0");
  }
  const double low = 1.0 - options.epsilon;
  const double high = 1.0 + options.epsilon_high.value_or(options.epsilon);
  for (size_t i = 0; i < completions.size(); ++i) {
    const CompletionTerms& c = completions[i];
    if (c.old_logp.size() != c.logp.size() ||
        dlogp[i].size() != c.logp.size() ||
        (options.beta > 0 && c.ref_logp.size() != c.logp.size())) {
      return InvalidArgumentError("completion " + std::to_string(i) +
                                  ": logprob spans differ in length");
    }
  }
  const LossCounts local = CountLossTerms(completions, options);
  if (global &&
      (global->sequences < local.sequences || global->tokens < local.tokens))
    return InvalidArgumentError(
        "the global batch counts fewer completions or tokens than this "
        "share of it");
  const int64_t counted_sequences =
      global ? global->sequences : local.sequences;
  const int64_t counted_tokens = global ? global->tokens : local.tokens;

  GrpoLossStats stats;
  int64_t clipped = 0;
  double kl_sum = 0, ratio_sum = 0;
  for (size_t i = 0; i < completions.size(); ++i) {
    const CompletionTerms& c = completions[i];
    std::fill(dlogp[i].begin(), dlogp[i].end(), 0.0f);
    if ((options.drop_truncated && c.truncated) || c.logp.empty()) continue;
    double weight = 0;
    switch (options.aggregation) {
      case LossAggregation::kSequenceMean:
        weight = 1.0 / (double(c.logp.size()) * counted_sequences);
        break;
      case LossAggregation::kTokenMean:
        weight = 1.0 / double(counted_tokens);
        break;
      case LossAggregation::kConstant:
        weight = 1.0 / (options.constant_normalizer * counted_sequences);
        break;
    }
    const double a = c.advantage;
    for (size_t t = 0; t < c.logp.size(); ++t) {
      const double ratio = std::exp(double(c.logp[t]) - double(c.old_logp[t]));
      const double clipped_ratio = std::clamp(ratio, low, high);
      const double unclipped = ratio * a;
      const double clip_term = clipped_ratio * a;
      // min(...) picks the clipped term only when it is smaller; then the
      // ratio is outside the range and the term is constant in logp.
      const bool clip_active = clip_term < unclipped;
      double loss_t = -std::min(unclipped, clip_term);
      double grad = clip_active ? 0.0 : -a * ratio;
      clipped += clip_active;
      ratio_sum += ratio;
      if (options.beta > 0) {
        const double diff = double(c.ref_logp[t]) - double(c.logp[t]);
        const double kl = std::exp(diff) - diff - 1.0;
        kl_sum += kl;
        loss_t += options.beta * kl;
        grad += options.beta * (1.0 - std::exp(diff));
      }
      stats.loss += weight * loss_t;
      dlogp[i][t] = static_cast<float>(weight * grad);
    }
  }
  stats.tokens = local.tokens;
  if (counted_tokens > 0) {
    stats.clip_fraction = double(clipped) / counted_tokens;
    stats.kl_mean = kl_sum / counted_tokens;
    stats.ratio_mean = ratio_sum / counted_tokens;
  }
  return stats;
}

}  // namespace rlrt
