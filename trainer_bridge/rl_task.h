// What the RL loop needs from a task: the prompts of each batch and a
// reward for each sampled completion.
#ifndef RLRT_TRAINER_BRIDGE_RL_TASK_H_
#define RLRT_TRAINER_BRIDGE_RL_TASK_H_

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "sampler/request.h"

namespace rlrt {

struct Reward {
  double total = 0;
  // Each reward function's (unweighted) value, reported in the metrics.
  std::vector<std::pair<std::string, double>> parts;
};

class RlTask {
 public:
  virtual ~RlTask() = default;
  // The prompts of batch `index` (0-based), as token ids. Must depend only
  // on `index`, so a run is reproducible whatever the overlap did.
  virtual StatusOr<std::vector<std::vector<int32_t>>> Prompts(
      int64_t index, int64_t batch_size) = 0;
  // The reward of one completion of prompt `prompt` of batch `index`.
  virtual Reward Score(int64_t index, int64_t prompt,
                       const SampleOutput& completion) = 0;
  // The rewards of all completions of one prompt, in order. By default each
  // is scored alone; a task that scores a group together (an external
  // reward service) overrides it, and its error stops the run.
  virtual StatusOr<std::vector<Reward>> ScoreGroup(
      int64_t index, int64_t prompt,
      std::span<const SampleOutput> completions) {
    std::vector<Reward> rewards;
    rewards.reserve(completions.size());
    for (const SampleOutput& c : completions)
      rewards.push_back(Score(index, prompt, c));
    return rewards;
  }
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_RL_TASK_H_
