// The GRPO objective over per-token logprobs, and its gradient with respect
// to them (the trainer backpropagates that through the model). The variants
// carry TRL's names where TRL has them.
//
// Per completion i with advantage A_i, per token t:
//   r = exp(logp - old)                (old: the behaviour policy, i.e. the
//                                       sampler's logprob); with
//                                       importance_sampling_level=sequence
//                                       (GSPO) r = exp(mean_t(logp - old)),
//                                       one ratio for the whole completion
//   surrogate = min(r * A, clip(r, 1 - eps_low, 1 + eps_high) * A)
//   dual clip (dual_clip_c = c > 1, A < 0): surrogate = max(surrogate, c * A)
//   with truncated importance sampling, surrogate *= w_t (is_weight)
//   kl = k(logp, ref), the estimator's (beta > 0):
//        k1 = logp - ref, k2 = (logp - ref)^2 / 2,
//        k3 = exp(ref - logp) - (ref - logp) - 1
//   loss_t = -surrogate + beta * kl
// and the loss is a weighted sum of loss_t, the weights set by loss_type:
//   grpo     mean over each completion's tokens, then over completions
//   bnpo     mean over the tokens of this process's batch (TRL: the local
//            batch); with data parallelism the ranks' means are averaged
//   dr_grpo  sum over tokens / (completions * max_completion_length)
//   dapo     mean over the tokens of the global batch (all ranks)
// In one process bnpo and dapo are the same.
#ifndef RLRT_TRAINER_BRIDGE_GRPO_LOSS_H_
#define RLRT_TRAINER_BRIDGE_GRPO_LOSS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace rlrt {

enum class LossType { kGrpo, kBnpo, kDrGrpo, kDapo };
enum class ImportanceSamplingLevel { kToken, kSequence };
enum class KlEstimator { kK1, kK2, kK3 };
enum class AdvantageEstimator { kGrpo, kRloo, kReinforcePlusPlus };

// The names the flags use: grpo|bnpo|dr_grpo|dapo, token|sequence,
// k1|k2|k3, grpo|rloo|reinforce_pp.
StatusOr<LossType> ParseLossType(std::string_view name);
StatusOr<ImportanceSamplingLevel> ParseImportanceSamplingLevel(
    std::string_view name);
StatusOr<KlEstimator> ParseKlEstimator(std::string_view name);
StatusOr<AdvantageEstimator> ParseAdvantageEstimator(std::string_view name);

struct GrpoLossOptions {
  double epsilon = 0.2;
  std::optional<double> epsilon_high;  // DAPO's asymmetric clip; default eps.
  double beta = 0.0;                   // KL coefficient; 0 skips the reference.
  LossType loss_type = LossType::kGrpo;
  double max_completion_length = 1.0;  // dr_grpo's constant.
  bool drop_truncated = false;         // Truncated completions get no loss.
  ImportanceSamplingLevel importance_sampling_level =
      ImportanceSamplingLevel::kToken;
  double dual_clip_c = 0;  // 0: off; else > 1.
  KlEstimator kl_estimator = KlEstimator::kK3;
};

// The estimator's KL at one token, and its derivative in logp.
double KlEstimate(KlEstimator estimator, double logp, double ref);
double KlEstimateGradient(KlEstimator estimator, double logp, double ref);

// Advantages from rewards in groups of `group_size` (consecutive):
//   grpo          r - group mean, divided by the group's std (population)
//                 plus `epsilon` when scale_by_std (off: Dr. GRPO)
//   rloo          r - the mean of the group's other rewards (leave one out)
//   reinforce_pp  r - group mean; WhitenAdvantages then normalises them over
//                 the whole batch (REINFORCE++ with a group baseline)
StatusOr<std::vector<double>> GroupAdvantages(std::span<const double> rewards,
                                              int64_t group_size,
                                              AdvantageEstimator estimator,
                                              bool scale_by_std,
                                              double epsilon = 1e-4);
// (a - mean) / (std + epsilon) in place, with the batch's mean and
// (population) std given: with data parallelism they are the global batch's.
void WhitenAdvantages(std::span<double> advantages, double mean, double std,
                      double epsilon = 1e-4);
// KL in the reward: each completion's reward minus beta times the sum over
// its tokens of the estimator's KL between the behaviour logprobs (what
// sampled it) and the reference's.
std::vector<double> KlPenalizedRewards(
    std::span<const double> rewards,
    std::span<const std::vector<float>> behaviour_logp,
    std::span<const std::vector<float>> ref_logp, double beta,
    KlEstimator estimator);

// One completion's terms. ref_logp may be empty when beta == 0.
struct CompletionTerms {
  std::span<const float> logp;
  std::span<const float> old_logp;
  std::span<const float> ref_logp;
  double advantage = 0;
  bool truncated = false;
  // Truncated importance sampling: a constant weight per token on the
  // surrogate term (not the KL); empty: 1.
  std::span<const float> is_weight;
};

// Truncated importance sampling (for stale rollouts): per token
// min(exp(old - behaviour), cap), the weight that corrects the policy the
// trainer held at the step's start (old) for the one that sampled
// (behaviour). Counts the tokens the cap cut into *capped.
std::vector<float> TruncatedImportanceWeights(std::span<const float> old,
                                              std::span<const float> behaviour,
                                              double cap, int64_t* capped);

struct GrpoLossStats {
  double loss = 0;
  double clip_fraction = 0;       // Tokens whose gradient the clip removed.
  double dual_clip_fraction = 0;  // Of those, by the dual clip's bound.
  double kl_mean = 0;  // Mean estimator KL over counted tokens (beta > 0).
  double ratio_mean = 0;
  int64_t tokens = 0;  // Tokens that count.
};

// What the aggregation divides by: the completions and tokens that count
// (bnpo and dapo divide by `tokens`; the learner passes the local or the
// global count, times the number of ranks for bnpo).
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
