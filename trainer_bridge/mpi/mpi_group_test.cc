// Run under `mpirun -np 2` (ctest does): the MPI group's reductions add in
// rank order and give every rank the same bits, and the RL loop over two
// ranks (each with its own engine and learner) learns the synthetic task
// with identical replicas after every step, bitwise reproducibly.
#include "trainer_bridge/mpi/mpi_group.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "models/dtype.h"
#include "models/leaf_checksum.h"
#include "trainer_bridge/rl_loop.h"
#include "trainer_bridge/rl_test_util.h"

namespace rlrt {
namespace {

MpiGroup* group = nullptr;  // Set by main before any test runs.

// Rank r's value at element i; chosen so the order of addition matters.
float ValueOf(int rank, size_t i) {
  const float big = (i % 3 == 0) ? 1e8f : 1.0f;
  return rank == 1 ? big : (rank == 2 ? -big : float(i % 7) + 0.5f * rank);
}

TEST(MpiGroupTest, SumsAddTheRanksInRankOrderOnEveryRank) {
  // Longer than one block of kMaxElementsPerCall is not needed: the split
  // into owner slices already varies with the length.
  for (size_t n : {size_t{1}, size_t{5}, size_t{1000}, size_t{100003}}) {
    std::vector<float> values(n);
    for (size_t i = 0; i < n; ++i) values[i] = ValueOf(group->rank(), i);
    ASSERT_TRUE(group->SumInRankOrder(values).ok());
    for (size_t i = 0; i < n; ++i) {
      float want = ValueOf(0, i);
      for (int r = 1; r < group->size(); ++r) want += ValueOf(r, i);
      ASSERT_EQ(values[i], want) << "n " << n << " element " << i;
    }
    // Every rank holds the same bits.
    const uint64_t hash = XXH3_64bits(values.data(), n * sizeof(float));
    auto all = group->AllGather(hash);
    ASSERT_TRUE(all.ok());
    for (uint64_t h : *all) EXPECT_EQ(h, hash);
  }
}

TEST(MpiGroupTest, Bf16SumsRoundOnce) {
  std::vector<uint16_t> v = {F32ToBf16(group->rank() == 0 ? 1.0f : 0x1p-8f)};
  ASSERT_TRUE(group->SumInRankOrderBf16(v).ok());
  float want = 1.0f;
  for (int r = 1; r < group->size(); ++r) want += 0x1p-8f;
  EXPECT_EQ(Bf16ToF32(v[0]), Bf16ToF32(F32ToBf16(want)));
}

TEST(MpiGroupTest, BuffersOfDifferentLengthsAreRefusedOnEveryRank) {
  std::vector<double> v(2 + group->rank(), 1.0);
  const Status reduce = group->AllReduce(v, ReduceOp::kSum);
  EXPECT_EQ(reduce.code(), StatusCode::kInvalidArgument) << reduce;
  EXPECT_NE(reduce.message().find("different lengths"), std::string::npos);
  std::vector<float> f(5 + group->rank(), 1.0f);
  EXPECT_EQ(group->SumInRankOrder(f).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f[0], 1.0f);  // Unchanged.
}

TEST(MpiGroupTest, SmallReductions) {
  double v[] = {double(group->rank()), double(-group->rank())};
  ASSERT_TRUE(group->AllReduce(v, ReduceOp::kMax).ok());
  EXPECT_EQ(v[0], group->size() - 1);
  EXPECT_EQ(v[1], 0);
  double s[] = {1.0};
  ASSERT_TRUE(group->AllReduce(s, ReduceOp::kSum).ok());
  EXPECT_EQ(s[0], group->size());
}

// The synthetic learning proof (the RL loop tests' task) with the batch
// shared over the ranks: 8 prompts x 8 completions per step, 4 prompts per
// rank, serial (on-policy).
std::vector<RlStepMetrics> LearnOnRanks(int steps, uint64_t* final_hash) {
  testing::Rig rig;
  rig.learner->set_data_parallel(group);
  testing::TargetTokenTask task;
  std::vector<RlStepMetrics> metrics;
  const Status run = testing::RunCollecting(
      *rig.engine, *rig.learner, task, testing::SmallLoop(steps, 0), &metrics);
  EXPECT_TRUE(run.ok()) << run;
  *final_hash = ContentHash(rig.learner->weights());
  EXPECT_EQ(rig.engine->WeightsChecksum()->content_hash, *final_hash);
  return metrics;
}

TEST(MpiGroupTest, TwoRanksLearnWithIdenticalReplicasEveryStep) {
  uint64_t hash = 0;
  const std::vector<RlStepMetrics> steps = LearnOnRanks(30, &hash);
  ASSERT_EQ(steps.size(), 30u);
  std::string curve;
  double best_late = 0;
  for (const RlStepMetrics& m : steps) {
    // The loop compared the replicas' hashes; they agreed on every step.
    EXPECT_EQ(m.ranks, group->size());
    EXPECT_NE(m.replica_weights_hash, 0u);
    EXPECT_EQ(m.grpo.logprob_mismatch_max, 0.0) << "step " << m.step;
    if (m.step > 20) best_late = std::max(best_late, m.grpo.reward_mean);
    curve += std::to_string(m.grpo.reward_mean).substr(0, 4) + " ";
  }
  EXPECT_LT(steps[0].grpo.reward_mean, 0.2) << curve;
  EXPECT_GT(best_late, 0.8) << curve;
  if (group->rank() == 0)
    std::cout << "mean reward per step (2 ranks): " << curve << std::endl;
  auto all = group->AllGather(hash);
  ASSERT_TRUE(all.ok());
  for (uint64_t h : *all) EXPECT_EQ(h, hash);
}

TEST(MpiGroupTest, RunsAreBitwiseReproducible) {
  uint64_t first = 0, second = 0;
  LearnOnRanks(4, &first);
  LearnOnRanks(4, &second);
  EXPECT_EQ(first, second);
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto group = rlrt::MpiGroup::Create(&argc, &argv, std::chrono::seconds(120));
  if (!group.ok()) {
    std::cerr << group.status() << std::endl;
    return 1;
  }
  rlrt::group = group->get();
  if ((*group)->size() < 2)
    std::cerr << "note: run under mpirun -np 2; one rank tests little"
              << std::endl;
  const int result = RUN_ALL_TESTS();
  // A failing rank takes the job down rather than leaving its peers
  // waiting in a collective.
  if (result != 0) (*group)->AbortJob(1);
  return 0;
}
