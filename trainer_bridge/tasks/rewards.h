// Built-in reward functions for completions that end in a final answer,
// chosen and weighted by RewardOptions (a weight of 0 switches one off; the
// four answer rewards are still reported in the metrics). Each function's
// value is in [0, 1], the length penalty's in [-1, 0].
#ifndef RLRT_TRAINER_BRIDGE_TASKS_REWARDS_H_
#define RLRT_TRAINER_BRIDGE_TASKS_REWARDS_H_

#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "trainer_bridge/tasks/dataset.h"

namespace rlrt {

// 1 when the completion ends with its answer in `format` (ExtractAnswer,
// strict).
double StrictFormatReward(std::string_view completion,
                          AnswerFormat format = AnswerFormat::kHashes);
// 1 when the format's marker with an answer appears anywhere ("####" and a
// number after it; a closed \boxed{}); plain answers have no marker: 0.
double LenientFormatReward(std::string_view completion,
                           AnswerFormat format = AnswerFormat::kHashes);
// 1 when the extracted answer (strict form first, then lenient) equals the
// gold answer after normalisation (NormalizeAnswer).
double CorrectnessReward(std::string_view completion, std::string_view gold,
                         AnswerFormat format = AnswerFormat::kHashes);
// For a wrong but close numeric answer: 1 - relative error (relative to
// max(|gold|, 1)), floored at 0; 0 for an exact answer (CorrectnessReward
// pays that), a non-numeric one, and when nothing can be extracted.
double CloseAnswerReward(std::string_view completion, std::string_view gold,
                         AnswerFormat format = AnswerFormat::kHashes);
// Completions up to `target` tokens cost nothing; beyond, the penalty
// grows linearly to -1 at twice the target.
double LengthPenalty(int64_t tokens, int64_t target);

struct RewardOptions {
  AnswerFormat format = AnswerFormat::kHashes;
  double strict_format = 0.25;
  double lenient_format = 0.25;
  double correctness = 2.0;
  double close_answer = 0.5;
  // 1 when the completion contains a match of regex_pattern (ECMAScript).
  double regex = 0;
  std::string regex_pattern;
  double length = 0;  // Weight of LengthPenalty(tokens, length_target).
  int64_t length_target = 0;
};

// The options' rewards, ready to score: the pattern compiled once.
class RewardScorer {
 public:
  // InvalidArgument for a pattern that does not compile, a regex weight
  // without a pattern, a length weight without a target, non-finite weights.
  static StatusOr<RewardScorer> Create(const RewardOptions& options);

  struct Scored {
    double total = 0;  // The weighted sum.
    // Each enabled function's unweighted value, by name: strict_format,
    // lenient_format, correctness, close_answer always; regex and length
    // when weighted.
    std::vector<std::pair<std::string, double>> parts;
  };
  Scored Score(std::string_view completion, int64_t tokens,
               std::string_view gold) const;
  const RewardOptions& options() const { return options_; }

 private:
  explicit RewardScorer(const RewardOptions& options) : options_(options) {}
  RewardOptions options_;
  std::shared_ptr<const std::regex> regex_;
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_TASKS_REWARDS_H_
