// The GRPO objective over per-token logprobs, and its gradient with respect
// to them (the trainer backpropagates that through the model).
//
// Per completion i with advantage A_i, per token t:
//   r = exp(logp - old_logp)                      (old: the behaviour policy,
//                                                  i.e. the sampler's logprob)
//   surrogate = min(r * A, clip(r, 1 - eps_low, 1 + eps_high) * A)
//   kl = exp(ref - logp) - (ref - logp) - 1       (k3 estimator; beta > 0)
//   loss_t = -surrogate + beta * kl
// and the loss is a weighted sum of loss_t, the weights set by the
// aggregation: per-sequence token mean then batch mean (GRPO), token mean
// over the batch (DAPO), or sum over tokens / (batch * constant) (Dr. GRPO).
#ifndef RLRT_TRAINER_BRIDGE_GRPO_LOSS_H_
#define RLRT_TRAINER_BRIDGE_GRPO_LOSS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace rlrt {

enum class LossAggregation { kSequenceMean, kTokenMean, kConstant };

// "sequence_mean" (GRPO), "token_mean" (DAPO) or "constant" (Dr. GRPO), as
// the command-line tools spell them.
StatusOr<LossAggregation> ParseLossAggregation(const std::string& name);

struct GrpoLossOptions {
  double epsilon = 0.2;
  std::optional<double> epsilon_high;  // DAPO's asymmetric clip; default eps.
  double beta = 0.0;                   // KL coefficient; 0 skips the reference.
  LossAggregation aggregation = LossAggregation::kSequenceMean;
  double constant_normalizer = 1.0;  // kConstant: tokens per completion.
  bool drop_truncated = false;       // Truncated completions get no loss.
};

// Group-relative advantages: rewards in groups of `group_size` (consecutive),
// each minus its group's mean, divided by the group's std (population) plus
// `epsilon` when scale_by_std (off: Dr. GRPO).
StatusOr<std::vector<double>> GroupAdvantages(std::span<const double> rewards,
                                              int64_t group_size,
                                              bool scale_by_std,
                                              double epsilon = 1e-4);

// One completion's terms. ref_logp may be empty when beta == 0.
struct CompletionTerms {
  std::span<const float> logp;
  std::span<const float> old_logp;
  std::span<const float> ref_logp;
  double advantage = 0;
  bool truncated = false;
};

struct GrpoLossStats {
  double loss = 0;
  double clip_fraction = 0;  // Tokens whose gradient the clip removed.
  double kl_mean = 0;        // Mean k3 over counted tokens (beta > 0).
  double ratio_mean = 0;
  int64_t tokens = 0;  // Tokens that count.
};

// What the aggregation divides by: the completions and tokens that count.
struct LossCounts {
  int64_t sequences = 0;
  int64_t tokens = 0;
};
LossCounts CountLossTerms(std::span<const CompletionTerms> completions,
                          const GrpoLossOptions& options);

// Computes the loss and writes dLoss/dlogp for every token of completion i
// into dlogp[i] (same length as its logp; zeros where it does not count).
// `global` (data parallelism) gives the counts of the whole batch across
// ranks: the loss, its gradient and the stats' means (clip fraction, KL,
// ratio) are then this share's part of the global ones, so summing them
// over the ranks gives the global batch's exactly as one rank would compute
// it; stats.tokens stays the local count.
StatusOr<GrpoLossStats> GrpoLoss(std::span<const CompletionTerms> completions,
                                 const GrpoLossOptions& options,
                                 std::span<const std::span<float>> dlogp,
                                 std::optional<LossCounts> global = {});

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_GRPO_LOSS_H_
