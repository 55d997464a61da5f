#include "trainer_bridge/grpo_loss.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace rlrt {
namespace {

Status UnknownName(std::string_view what, std::string_view allowed,
                   std::string_view name) {
  return InvalidArgumentError(std::string(what) + " must be " +
                              std::string(allowed) + ", not '" +
                              std::string(name) + "'");
}

}  // namespace

StatusOr<LossType> ParseLossType(std::string_view name) {
  if (name == "grpo") return LossType::kGrpo;
  if (name == "bnpo") return LossType::kBnpo;
  if (name == "dr_grpo") return LossType::kDrGrpo;
  if (name == "dapo") return LossType::kDapo;
  return UnknownName("the loss type", "grpo, bnpo, dr_grpo or dapo", name);
}

StatusOr<ImportanceSamplingLevel> ParseImportanceSamplingLevel(
    std::string_view name) {
  if (name == "token") return ImportanceSamplingLevel::kToken;
  if (name == "sequence") return ImportanceSamplingLevel::kSequence;
  return UnknownName("the importance sampling level", "token or sequence",
                     name);
}

StatusOr<KlEstimator> ParseKlEstimator(std::string_view name) {
  if (name == "k1") return KlEstimator::kK1;
  if (name == "k2") return KlEstimator::kK2;
  if (name == "k3") return KlEstimator::kK3;
  return UnknownName("the KL estimator", "k1, k2 or k3", name);
}

StatusOr<AdvantageEstimator> ParseAdvantageEstimator(std::string_view name) {
  if (name == "grpo") return AdvantageEstimator::kGrpo;
  if (name == "rloo") return AdvantageEstimator::kRloo;
  if (name == "reinforce_pp") return AdvantageEstimator::kReinforcePlusPlus;
  return UnknownName("the advantage estimator", "grpo, rloo or reinforce_pp",
                     name);
}

double KlEstimate(KlEstimator estimator, double logp, double ref) {
  const double diff = ref - logp;
  switch (estimator) {
    case KlEstimator::kK1:
      return -diff;
    case KlEstimator::kK2:
      return 0.5 * diff * diff;
    case KlEstimator::kK3:
      break;
  }
  return std::exp(diff) - diff - 1.0;
}

double KlEstimateGradient(KlEstimator estimator, double logp, double ref) {
  const double diff = ref - logp;
  switch (estimator) {
    case KlEstimator::kK1:
      return 1.0;
    case KlEstimator::kK2:
      return -diff;
    case KlEstimator::kK3:
      break;
  }
  return 1.0 - std::exp(diff);
}

StatusOr<std::vector<double>> GroupAdvantages(std::span<const double> rewards,
                                              int64_t group_size,
                                              AdvantageEstimator estimator,
                                              bool scale_by_std,
                                              double epsilon) {
  if (group_size < 1 || rewards.size() % group_size != 0) {
    return InvalidArgumentError(std::to_string(rewards.size()) +
                                " rewards do not split into groups of " +
                                std::to_string(group_size));
  }
  if (estimator == AdvantageEstimator::kRloo && group_size < 2)
    return InvalidArgumentError("RLOO needs groups of at least 2");
  std::vector<double> advantages(rewards.size());
  for (size_t g = 0; g < rewards.size(); g += group_size) {
    double sum = 0;
    for (int64_t i = 0; i < group_size; ++i) sum += rewards[g + i];
    const double mean = sum / group_size;
    double var = 0;
    for (int64_t i = 0; i < group_size; ++i)
      var += (rewards[g + i] - mean) * (rewards[g + i] - mean);
    const double scale = estimator == AdvantageEstimator::kGrpo && scale_by_std
                             ? 1.0 / (std::sqrt(var / group_size) + epsilon)
                             : 1.0;
    for (int64_t i = 0; i < group_size; ++i) {
      const double r = rewards[g + i];
      advantages[g + i] = estimator == AdvantageEstimator::kRloo
                              ? r - (sum - r) / double(group_size - 1)
                              : (r - mean) * scale;
    }
  }
  return advantages;
}

void WhitenAdvantages(std::span<double> advantages, double mean, double std,
                      double epsilon) {
  for (double& a : advantages) a = (a - mean) / (std + epsilon);
}

std::vector<double> KlPenalizedRewards(
    std::span<const double> rewards,
    std::span<const std::vector<float>> behaviour_logp,
    std::span<const std::vector<float>> ref_logp, double beta,
    KlEstimator estimator) {
  std::vector<double> out(rewards.begin(), rewards.end());
  for (size_t i = 0; i < out.size(); ++i) {
    double kl = 0;
    for (size_t t = 0; t < behaviour_logp[i].size(); ++t)
      kl += KlEstimate(estimator, behaviour_logp[i][t], ref_logp[i][t]);
    out[i] -= beta * kl;
  }
  return out;
}

std::vector<float> TruncatedImportanceWeights(std::span<const float> old,
                                              std::span<const float> behaviour,
                                              double cap, int64_t* capped) {
  std::vector<float> weights(old.size());
  for (size_t t = 0; t < old.size(); ++t) {
    const double w = std::exp(double(old[t]) - double(behaviour[t]));
    *capped += w > cap;
    weights[t] = static_cast<float>(std::min(w, cap));
  }
  return weights;
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
      (options.loss_type == LossType::kDrGrpo &&
       !(options.max_completion_length > 0))) {
    return InvalidArgumentError(
        "epsilon, epsilon_high and beta must be >= 0 and dr_grpo's "
        "max_completion_length > 0");
  }
  if (options.dual_clip_c != 0 && !(options.dual_clip_c > 1))
    return InvalidArgumentError(
        "the dual clip's c must be > 1 (or 0: off), not " +
        std::to_string(options.dual_clip_c));
  for (size_t i = 0; i < completions.size(); ++i) {
    const CompletionTerms& c = completions[i];
    if (c.old_logp.size() != c.logp.size() ||
        dlogp[i].size() != c.logp.size() ||
        (!c.is_weight.empty() && c.is_weight.size() != c.logp.size()) ||
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
  const double low = 1.0 - options.epsilon;
  const double high = 1.0 + options.epsilon_high.value_or(options.epsilon);
  const bool by_sequence =
      options.importance_sampling_level == ImportanceSamplingLevel::kSequence;

  GrpoLossStats stats;
  int64_t clipped = 0, dual_clipped = 0;
  double kl_sum = 0, ratio_sum = 0;
  for (size_t i = 0; i < completions.size(); ++i) {
    const CompletionTerms& c = completions[i];
    std::fill(dlogp[i].begin(), dlogp[i].end(), 0.0f);
    if ((options.drop_truncated && c.truncated) || c.logp.empty()) continue;
    const double n = static_cast<double>(c.logp.size());
    // Every token of a completion has the same weight.
    double weight = 0;
    switch (options.loss_type) {
      case LossType::kGrpo:
        weight = 1.0 / (n * counted_sequences);
        break;
      case LossType::kBnpo:
      case LossType::kDapo:
        weight = 1.0 / double(counted_tokens);
        break;
      case LossType::kDrGrpo:
        weight = 1.0 / (options.max_completion_length * counted_sequences);
        break;
    }
    double sequence_log_ratio = 0;
    if (by_sequence) {
      for (size_t t = 0; t < c.logp.size(); ++t)
        sequence_log_ratio += double(c.logp[t]) - double(c.old_logp[t]);
      sequence_log_ratio /= n;
    }
    const double a = c.advantage;
    // GSPO: d(loss)/d(log r) summed over the tokens, spread back over them
    // through d(log r)/d(logp_t) = 1/n.
    double sequence_grad = 0;
    for (size_t t = 0; t < c.logp.size(); ++t) {
      const double log_ratio = by_sequence
                                   ? sequence_log_ratio
                                   : double(c.logp[t]) - double(c.old_logp[t]);
      const double ratio = std::exp(log_ratio);
      const double unclipped = ratio * a;
      const double clip_term = std::clamp(ratio, low, high) * a;
      // min(...) picks the clipped term only when it is smaller; then the
      // ratio is outside the range and the term is constant in logp.
      bool flat = clip_term < unclipped;
      double surrogate = std::min(unclipped, clip_term);
      if (options.dual_clip_c > 0 && a < 0 &&
          options.dual_clip_c * a > surrogate) {
        // The dual clip bounds the loss of a negative advantage: beyond
        // ratio c the term is the constant c * A.
        surrogate = options.dual_clip_c * a;
        dual_clipped += !flat;
        flat = true;
      }
      clipped += flat;
      ratio_sum += ratio;
      const double is_weight = c.is_weight.empty() ? 1.0 : c.is_weight[t];
      double loss_t = -is_weight * surrogate;
      // d(loss_t)/d(log r): -w * A * r where the ratio still acts.
      const double ratio_grad = flat ? 0.0 : -is_weight * a * ratio;
      double grad = by_sequence ? 0.0 : ratio_grad;
      if (by_sequence) sequence_grad += weight * ratio_grad;
      if (options.beta > 0) {
        const double kl =
            KlEstimate(options.kl_estimator, c.logp[t], c.ref_logp[t]);
        kl_sum += kl;
        loss_t += options.beta * kl;
        grad += options.beta * KlEstimateGradient(options.kl_estimator,
                                                  c.logp[t], c.ref_logp[t]);
      }
      stats.loss += weight * loss_t;
      dlogp[i][t] = static_cast<float>(weight * grad);
    }
    if (by_sequence) {
      for (float& g : dlogp[i]) g += static_cast<float>(sequence_grad / n);
    }
  }
  stats.tokens = local.tokens;
  if (counted_tokens > 0) {
    stats.clip_fraction = double(clipped) / counted_tokens;
    stats.dual_clip_fraction = double(dual_clipped) / counted_tokens;
    stats.kl_mean = kl_sum / counted_tokens;
    stats.ratio_mean = ratio_sum / counted_tokens;
  }
  return stats;
}

}  // namespace rlrt
