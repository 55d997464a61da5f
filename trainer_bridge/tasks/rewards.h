// Reward functions for GSM8K completions, each in [0, 1], and their
// weighted sum. Weights come from flags; a weight of 0 switches a function
// off (it is still reported in the metrics).
#ifndef RLRT_TRAINER_BRIDGE_TASKS_REWARDS_H_
#define RLRT_TRAINER_BRIDGE_TASKS_REWARDS_H_

#include <string>
#include <string_view>
#include <vector>

namespace rlrt {

// 1 when the last non-empty line is exactly "#### <number>".
double StrictFormatReward(std::string_view completion);
// 1 when a number follows some "####".
double LenientFormatReward(std::string_view completion);
// 1 when the extracted answer (strict form first, then lenient) equals the
// gold answer after normalisation.
double CorrectnessReward(std::string_view completion, std::string_view gold);
// For a wrong but close answer: 1 - relative error (relative to max(|gold|,
// 1)), floored at 0; 0 for an exact answer (CorrectnessReward pays that)
// and when no number can be extracted.
double CloseAnswerReward(std::string_view completion, std::string_view gold);

struct RewardWeights {
  double strict_format = 0.25;
  double lenient_format = 0.25;
  double correctness = 2.0;
  double close_answer = 0.5;
};

struct RewardBreakdown {
  double strict_format = 0;
  double lenient_format = 0;
  double correctness = 0;
  double close_answer = 0;
  double total = 0;  // Weighted sum.
};

RewardBreakdown ScoreGsm8k(std::string_view completion, std::string_view gold,
                           const RewardWeights& weights);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_TASKS_REWARDS_H_
