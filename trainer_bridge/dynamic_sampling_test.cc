// DAPO dynamic sampling in the RL loop: groups whose rewards are all equal
// are dropped, fresh prompts are sampled until the batch is full, and the
// step trains exactly the groups an independent replay of the rule picks.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "trainer_bridge/rl_loop.h"
#include "trainer_bridge/rl_test_util.h"

namespace rlrt {
namespace {

using testing::Rig;
using testing::RunCollecting;
using testing::SmallLoop;
using testing::TargetTokenTask;

// Records every group's rewards by (batch index, prompt), so the test can
// replay the selection rule on its own. Prompts of odd batch indices all
// earn 0.5 (no signal), so some rounds are wholly uninformative.
class RecordingTask : public TargetTokenTask {
 public:
  std::map<std::pair<int64_t, int64_t>, std::vector<double>> rewards;

  Reward Score(int64_t index, int64_t prompt, const SampleOutput& s) override {
    Reward r = index % 2 == 1 ? Reward{0.5, {{"target", 0.5}}}
                              : TargetTokenTask::Score(index, prompt, s);
    rewards[{index, prompt}].push_back(r.total);
    return r;
  }
};

bool AllEqual(const std::vector<double>& v) {
  for (double x : v)
    if (x != v.front()) return false;
  return true;
}

struct Expected {
  int64_t rounds = 0, dropped = 0, padded = 0;
  double reward_mean = 0;
};

// The rule, replayed from the recorded rewards of step `k`.
Expected Replay(const RecordingTask& task, int64_t k, int64_t batch,
                int64_t max_rounds) {
  Expected e;
  std::vector<const std::vector<double>*> kept, flat;
  // The rule samples another round exactly while the batch is short and
  // rounds are left.
  for (int64_t round = 0;
       round < max_rounds && static_cast<int64_t>(kept.size()) < batch;
       ++round) {
    const int64_t index = k * max_rounds + round;
    EXPECT_TRUE(task.rewards.contains({index, 0}))
        << "step " << k + 1 << " should have sampled round " << round;
    if (!task.rewards.contains({index, 0})) break;
    ++e.rounds;
    for (int64_t p = 0; p < batch; ++p) {
      const std::vector<double>& r = task.rewards.at({index, p});
      if (!AllEqual(r)) {
        if (static_cast<int64_t>(kept.size()) < batch) kept.push_back(&r);
      } else {
        ++e.dropped;
        flat.push_back(&r);
      }
    }
  }
  if (e.rounds < max_rounds) {
    EXPECT_FALSE(task.rewards.contains({k * max_rounds + e.rounds, 0}))
        << "step " << k + 1 << " sampled a round it did not need";
  }
  for (size_t i = 0; static_cast<int64_t>(kept.size()) < batch; ++i) {
    kept.push_back(flat.at(i));
    ++e.padded;
  }
  double sum = 0, n = 0;
  for (const auto* r : kept)
    for (double x : *r) sum += x, n += 1;
  e.reward_mean = sum / n;
  return e;
}

RlLoopOptions Dynamic(int64_t steps, int64_t staleness, int64_t rounds) {
  RlLoopOptions o = SmallLoop(steps, staleness);
  o.dynamic_sampling = true;
  o.max_sampling_rounds = rounds;
  return o;
}

TEST(DynamicSamplingTest, TrainsOnlyInformativeGroupsAndReportsRounds) {
  Rig rig;
  RecordingTask task;
  const RlLoopOptions o = Dynamic(/*steps=*/3, /*staleness=*/0, /*rounds=*/4);
  std::vector<RlStepMetrics> steps;
  ASSERT_TRUE(RunCollecting(*rig.engine, *rig.learner, task, o, &steps).ok());
  ASSERT_EQ(steps.size(), 3u);
  int64_t dropped_total = 0;
  for (int64_t k = 0; k < 3; ++k) {
    const RlStepMetrics& m = steps[k];
    const Expected e = Replay(task, k, o.batch_size, o.max_sampling_rounds);
    EXPECT_EQ(m.sampling_rounds, e.rounds) << "step " << k + 1;
    EXPECT_EQ(m.groups_dropped, e.dropped) << "step " << k + 1;
    EXPECT_EQ(m.groups_padded, e.padded) << "step " << k + 1;
    EXPECT_NEAR(m.grpo.reward_mean, e.reward_mean, 1e-12) << "step " << k + 1;
    EXPECT_NEAR(m.reward_parts.at("target"), e.reward_mean, 1e-12);
    // Every round's tokens count as sampled.
    EXPECT_GT(m.rollout_tokens, 0);
    dropped_total += m.groups_dropped;
    // Round 1 (odd index) is flat: a step that needed it also went on.
    if (e.rounds >= 2) {
      EXPECT_GE(m.groups_dropped, o.batch_size);
    }
  }
  // Round 1 of every step is flat and the dummy model's groups often are,
  // so the rule had work to do.
  EXPECT_GT(dropped_total, 0);
  int64_t max_rounds_seen = 0;
  for (const RlStepMetrics& m : steps)
    max_rounds_seen = std::max(max_rounds_seen, m.sampling_rounds);
  EXPECT_GE(max_rounds_seen, 3);
}

TEST(DynamicSamplingTest, PadsWithFlatGroupsWhenRoundsRunOut) {
  Rig rig;
  RecordingTask task;
  const RlLoopOptions o = Dynamic(/*steps=*/2, /*staleness=*/1, /*rounds=*/1);
  std::vector<RlStepMetrics> steps;
  ASSERT_TRUE(RunCollecting(*rig.engine, *rig.learner, task, o, &steps).ok());
  for (int64_t k = 0; k < 2; ++k) {
    const RlStepMetrics& m = steps[k];
    const Expected e = Replay(task, k, o.batch_size, 1);
    EXPECT_EQ(m.sampling_rounds, 1);
    EXPECT_EQ(m.groups_dropped, e.dropped);
    EXPECT_EQ(m.groups_padded, e.dropped);  // One round: all flat ones pad.
    EXPECT_NEAR(m.grpo.reward_mean, e.reward_mean, 1e-12);
  }
  // Step 2 samples batch index 1: every group earns 0.5.
  EXPECT_EQ(steps[1].groups_dropped, o.batch_size);
  EXPECT_DOUBLE_EQ(steps[1].grpo.reward_mean, 0.5);
}

TEST(DynamicSamplingTest, RefusesZeroRounds) {
  Rig rig;
  RecordingTask task;
  const RlLoopOptions o = Dynamic(1, 0, /*rounds=*/0);
  StatusOr<RlRunSummary> r = RunRlLoop(*rig.engine, *rig.learner, task, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("max_sampling_rounds"),
            std::string::npos);
  EXPECT_TRUE(task.rewards.empty());  // Refused before sampling anything.
}

}  // namespace
}  // namespace rlrt
