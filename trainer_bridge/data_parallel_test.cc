// Data parallelism with ranks as threads (data_parallel_local.h): the
// reductions add in rank order, and N learners each given a share of a
// batch end every step with the same weights, equal to one learner given
// the whole batch up to float rounding, and bitwise equal from run to run.
#include "trainer_bridge/data_parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "models/dtype.h"
#include "models/leaf_checksum.h"
#include "models/train/train_test_util.h"
#include "trainer_bridge/data_parallel_local.h"
#include "trainer_bridge/grpo_learner.h"

namespace rlrt {
namespace {

// Runs fn(rank, group) on one thread per rank and waits for all.
void OnRanks(int size, const std::function<void(int, DataParallelGroup&)>& fn) {
  auto groups = CreateLocalGroups(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r)
    threads.emplace_back([&, r] { fn(r, *groups[r]); });
  for (std::thread& t : threads) t.join();
}

TEST(DataParallelTest, SumsAddTheRanksInRankOrderOnEveryRank) {
  // Float addition is not associative: with these values ((a + b) + c)
  // differs from (a + (b + c)), so only rank order gives the expectation.
  const std::vector<std::vector<float>> inputs = {
      {1.0f, 0.5f, -3.0f, 7.25f, 1.0f},
      {1e8f, 0.25f, 2.0f, -7.25f, 1e-8f},
      {-1e8f, 0.125f, 1.0f, 0.0f, 3.0f}};
  std::vector<float> want(5);
  for (size_t i = 0; i < want.size(); ++i)
    want[i] = (inputs[0][i] + inputs[1][i]) + inputs[2][i];
  ASSERT_NE(want[0], inputs[0][0] + (inputs[1][0] + inputs[2][0]));
  std::vector<std::vector<float>> results = inputs;
  OnRanks(3, [&](int rank, DataParallelGroup& group) {
    EXPECT_TRUE(group.SumInRankOrder(results[rank]).ok());
  });
  for (int r = 0; r < 3; ++r) EXPECT_EQ(results[r], want) << "rank " << r;
}

TEST(DataParallelTest, Bf16SumsRoundOnceAfterAddingInFloat) {
  // 1 + 2^-8 + 2^-8: each partial sum rounded to bfloat16 (a tie, to even)
  // would lose both small terms; added in float and rounded once they make
  // 1 + 2^-7, which bfloat16 holds.
  const uint16_t one = F32ToBf16(1.0f), small = F32ToBf16(0x1p-8f);
  std::vector<std::vector<uint16_t>> values = {{one}, {small}, {small}};
  OnRanks(3, [&](int rank, DataParallelGroup& group) {
    EXPECT_TRUE(group.SumInRankOrderBf16(values[rank]).ok());
  });
  for (int r = 0; r < 3; ++r)
    EXPECT_EQ(Bf16ToF32(values[r][0]), 1.0f + 0x1p-7f) << "rank " << r;
}

TEST(DataParallelTest, LeavesAreSummedAcrossLeafBoundariesInSmallBlocks) {
  std::vector<LeafSpec> specs = {{"a", {3}, DType::kF32},
                                 {"b", {5}, DType::kF32},
                                 {"c", {1}, DType::kF32}};
  std::vector<ParamLeaves> leaves;
  for (int r = 0; r < 2; ++r) {
    auto l = ParamLeaves::Allocate(specs);
    ASSERT_TRUE(l.ok());
    for (size_t i = 0; i < l->size(); ++i) {
      std::span<float> v = l->F32(i);
      for (size_t j = 0; j < v.size(); ++j) v[j] = float(r * 100 + i * 10 + j);
    }
    leaves.push_back(std::move(l).value());
  }
  // Blocks of 4 elements straddle every leaf boundary (3 | 5 | 1).
  OnRanks(2, [&](int rank, DataParallelGroup& group) {
    EXPECT_TRUE(group.SumLeavesInRankOrder(leaves[rank], 4).ok());
  });
  for (int r = 0; r < 2; ++r) {
    for (size_t i = 0; i < specs.size(); ++i) {
      std::span<const float> v = std::as_const(leaves[r]).F32(i);
      for (size_t j = 0; j < v.size(); ++j)
        EXPECT_EQ(v[j], float(100 + 2 * (i * 10 + j))) << i << "," << j;
    }
  }
}

// BF16 gradients beside F32 ones: interleaved leaves, blocks that straddle
// boundaries within each dtype, every BF16 sum formed in float32 and
// rounded once; an F16 leaf is refused with nothing summed.
TEST(DataParallelTest, MixedF32AndBf16LeavesAreEachSummedInTheirDtype) {
  std::vector<LeafSpec> specs = {{"a", {3}, DType::kBF16},
                                 {"b", {5}, DType::kF32},
                                 {"c", {4}, DType::kBF16},
                                 {"d", {1}, DType::kF32}};
  auto value = [](int rank, size_t leaf, size_t j) {
    return 1.0f + 0x1p-8f * float(rank + 1) + float(leaf * 10 + j);
  };
  std::vector<ParamLeaves> leaves;
  for (int r = 0; r < 3; ++r) {
    auto l = ParamLeaves::Allocate(specs);
    ASSERT_TRUE(l.ok());
    for (size_t i = 0; i < l->size(); ++i) {
      for (int64_t j = 0; j < specs[i].NumElements(); ++j)
        StoreFromF32(l->data(i), specs[i].dtype, j, value(r, i, j));
    }
    leaves.push_back(std::move(l).value());
  }
  std::vector<ParamLeaves> start;
  for (const ParamLeaves& l : leaves) {
    auto copy = ParamLeaves::Allocate(specs);
    ASSERT_TRUE(copy.ok());
    for (size_t i = 0; i < l.size(); ++i)
      std::memcpy(copy->data(i), l.data(i), l.bytes(i));
    start.push_back(std::move(copy).value());
  }
  OnRanks(3, [&](int rank, DataParallelGroup& group) {
    EXPECT_TRUE(group.SumLeavesInRankOrder(leaves[rank], 2).ok());
  });
  for (size_t i = 0; i < specs.size(); ++i) {
    for (int64_t j = 0; j < specs[i].NumElements(); ++j) {
      float sum = 0;
      for (int r = 0; r < 3; ++r)
        sum += LoadAsF32(start[r].data(i), specs[i].dtype, j);
      const float want =
          specs[i].dtype == DType::kBF16 ? Bf16ToF32(F32ToBf16(sum)) : sum;
      for (int r = 0; r < 3; ++r)
        EXPECT_EQ(LoadAsF32(leaves[r].data(i), specs[i].dtype, j), want)
            << r << " " << specs[i].name << "[" << j << "]";
    }
  }

  specs.push_back({"e", {2}, DType::kF16});
  std::vector<ParamLeaves> with_f16;
  for (int r = 0; r < 2; ++r) {
    auto l = ParamLeaves::Allocate(specs);
    ASSERT_TRUE(l.ok());
    std::fill_n(l->F32(1).data(), 5, 1.0f);
    with_f16.push_back(std::move(l).value());
  }
  OnRanks(2, [&](int rank, DataParallelGroup& group) {
    EXPECT_EQ(group.SumLeavesInRankOrder(with_f16[rank], 2).code(),
              StatusCode::kInvalidArgument);
  });
  EXPECT_EQ(with_f16[0].F32(1)[0], 1.0f);
}

TEST(DataParallelTest, DivergedReplicasAreNamedOnEveryRank) {
  std::vector<Status> results(3);
  OnRanks(3, [&](int rank, DataParallelGroup& group) {
    results[rank] =
        CheckReplicasIdentical(group, rank == 2 ? 7 : 5, "the policy weights");
  });
  for (const Status& s : results) {
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find("rank 2 has"), std::string::npos) << s;
    EXPECT_EQ(s.message().find("rank 1 has"), std::string::npos) << s;
  }
  OnRanks(3, [&](int rank, DataParallelGroup& group) {
    results[rank] = CheckReplicasIdentical(group, 5, "the policy weights");
  });
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s;
}

TEST(DataParallelTest, AFailureOnOneRankStopsEveryRank) {
  std::vector<Status> results(2);
  OnRanks(2, [&](int rank, DataParallelGroup& group) {
    results[rank] = AgreeOnStatus(
        &group, rank == 1 ? InvalidArgumentError("bad batch") : OkStatus());
  });
  EXPECT_EQ(results[1].code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(results[0].code(), StatusCode::kAborted);
  EXPECT_NE(results[0].message().find("rank(s) 1 failed"), std::string::npos)
      << results[0];
}

TEST(DataParallelTest, SharesMustDivide) {
  auto share = ShareOf(8, 1, 2, "the batch");
  ASSERT_TRUE(share.ok());
  EXPECT_EQ(share->begin, 4);
  EXPECT_EQ(share->end, 8);
  EXPECT_FALSE(ShareOf(6, 0, 4, "the batch").ok());
}

// --- Learners side by side ----------------------------------------------

// Four groups of three completions of different lengths and rewards, with
// behaviour logprobs that make some ratios clip.
std::vector<Completion> Batch(int step) {
  std::vector<Completion> batch;
  for (int group = 0; group < 4; ++group) {
    for (int member = 0; member < 3; ++member) {
      Completion c;
      c.prompt = {11 + group, 23 + step, 35, 47 + member};
      for (int t = 0; t < 2 + (group + member + step) % 4; ++t)
        c.tokens.push_back(5 + (7 * t + 3 * member + group) % 50);
      c.behaviour_logprobs.assign(c.tokens.size(),
                                  -3.5f - 0.25f * ((member + group) % 3));
      c.reward = (member + group + step) % 3 == 0 ? 1.0 : 0.25 * member;
      batch.push_back(c);
    }
  }
  return batch;
}

GrpoOptions Options() {
  GrpoOptions o;
  o.loss.beta = 0.04;
  o.loss.loss_type = LossType::kDapo;
  o.num_iterations = 2;
  o.lr.peak = 1e-3;
  o.max_micro_batch_tokens = 20;  // Several micro-batches per rank.
  return o;
}

// Trains `steps` steps on `ranks` ranks, each given its share of every
// batch; returns every rank's final weights (copied to floats) and rank
// 0's metrics per step.
struct RunResult {
  std::vector<std::vector<float>> weights;  // Per rank, all leaves.
  std::vector<GrpoStepMetrics> metrics;
};
RunResult Train(int ranks, int steps, const GrpoOptions& options) {
  const LoadedCheckpoint model = testing::LoadFixture("qwen3_untied");
  RunResult result;
  result.weights.resize(ranks);
  std::vector<std::vector<GrpoStepMetrics>> metrics(ranks);
  OnRanks(ranks, [&](int rank, DataParallelGroup& group) {
    auto learner = GrpoLearner::Create(model.config, model.leaves, nullptr,
                                       nullptr, options);
    ASSERT_TRUE(learner.ok()) << learner.status();
    if (ranks > 1) (*learner)->set_data_parallel(&group);
    for (int step = 0; step < steps; ++step) {
      const std::vector<Completion> batch = Batch(step);
      auto share = ShareOf(4, rank, ranks, "groups");
      ASSERT_TRUE(share.ok());
      std::vector<Completion> mine(batch.begin() + share->begin * 3,
                                   batch.begin() + share->end * 3);
      auto m = (*learner)->Step(mine, 3);
      ASSERT_TRUE(m.ok()) << m.status();
      metrics[rank].push_back(*m);
    }
    const ParamLeaves& w = (*learner)->weights();
    for (size_t i = 0; i < w.size(); ++i) {
      std::span<const float> v = w.F32(i);
      result.weights[rank].insert(result.weights[rank].end(), v.begin(),
                                  v.end());
    }
  });
  result.metrics = metrics[0];
  return result;
}

TEST(DataParallelLearnerTest, TwoRanksMatchOneRankAndStayIdentical) {
  const RunResult one = Train(1, 3, Options());
  const RunResult two = Train(2, 3, Options());
  ASSERT_EQ(two.weights.size(), 2u);
  // The replicas applied the same update from the same summed gradient.
  EXPECT_EQ(two.weights[0], two.weights[1]);
  ASSERT_EQ(one.weights[0].size(), two.weights[0].size());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < one.weights[0].size(); ++i) {
    max_diff = std::max(
        max_diff, std::fabs(double(one.weights[0][i]) - two.weights[0][i]));
    max_abs = std::max(max_abs, std::fabs(double(one.weights[0][i])));
  }
  // One rank adds the micro-batches' gradients in another order; after
  // three AdamW steps of lr 1e-3 the weights agree to float rounding.
  EXPECT_LE(max_diff, 2e-6) << "max |w| " << max_abs;
  std::printf("1 rank vs 2 ranks: max |dw| %.3g (max |w| %.3g)\n", max_diff,
              max_abs);
  ASSERT_EQ(one.metrics.size(), two.metrics.size());
  for (size_t s = 0; s < one.metrics.size(); ++s) {
    const GrpoStepMetrics &a = one.metrics[s], &b = two.metrics[s];
    EXPECT_NEAR(a.loss, b.loss, 1e-6) << "step " << s;
    EXPECT_DOUBLE_EQ(a.reward_mean, b.reward_mean);
    EXPECT_NEAR(a.reward_std, b.reward_std, 1e-12);
    EXPECT_NEAR(a.advantage_std, b.advantage_std, 1e-12);
    EXPECT_DOUBLE_EQ(a.completion_length_mean, b.completion_length_mean);
    EXPECT_EQ(a.completion_length_max, b.completion_length_max);
    EXPECT_EQ(a.train_tokens, b.train_tokens);
    EXPECT_NEAR(a.clip_fraction, b.clip_fraction, 1e-12);
    // After the first step the weights differ by float rounding.
    EXPECT_NEAR(a.kl, b.kl, 1e-6);
    EXPECT_NEAR(a.ratio_mean, b.ratio_mean, 1e-6);
    EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-6 * a.grad_norm);
    EXPECT_NEAR(a.logprob_mismatch_max, b.logprob_mismatch_max, 1e-6);
  }
  EXPECT_GT(one.metrics[0].clip_fraction, 0) << "the batch should clip";
}

// Advantages whitened over the batch (REINFORCE++), the KL in the reward
// and sequence-level ratios (GSPO) use global statistics: two ranks still
// match one process. bnpo's token mean is each rank's own (TRL's local
// batch), so there two ranks differ from one process unless the shares
// have equal token counts; dapo's is global.
TEST(DataParallelLearnerTest, VariantsMatchOneRankWhereTheyAreGlobal) {
  auto max_diff = [](const RunResult& a, const RunResult& b) {
    double d = 0;
    for (size_t i = 0; i < a.weights[0].size(); ++i)
      d = std::max(d, std::fabs(double(a.weights[0][i]) - b.weights[0][i]));
    return d;
  };
  GrpoOptions global = Options();
  global.advantage_estimator = AdvantageEstimator::kReinforcePlusPlus;
  global.kl_in_reward = true;
  global.loss.kl_estimator = KlEstimator::kK2;
  global.loss.importance_sampling_level = ImportanceSamplingLevel::kSequence;
  global.loss.loss_type = LossType::kGrpo;
  const RunResult one = Train(1, 2, global), two = Train(2, 2, global);
  EXPECT_EQ(two.weights[0], two.weights[1]);
  EXPECT_LE(max_diff(one, two), 2e-6);
  EXPECT_NEAR(one.metrics[0].kl, two.metrics[0].kl, 1e-9);
  EXPECT_NEAR(one.metrics[0].advantage_std, two.metrics[0].advantage_std, 1e-9);

  GrpoOptions bnpo = Options();
  bnpo.loss.loss_type = LossType::kBnpo;
  const RunResult bnpo_one = Train(1, 2, bnpo), bnpo_two = Train(2, 2, bnpo);
  EXPECT_EQ(bnpo_two.weights[0], bnpo_two.weights[1]);
  // One process: bnpo is dapo.
  GrpoOptions dapo = Options();
  dapo.loss.loss_type = LossType::kDapo;
  EXPECT_EQ(bnpo_one.weights[0], Train(1, 2, dapo).weights[0]);
  // Step 1's shares hold the same number of tokens (21 each), so there the
  // mean of the ranks' means is the global mean; step 2's hold 23 and 19.
  EXPECT_NEAR(bnpo_one.metrics[0].loss, bnpo_two.metrics[0].loss, 1e-7);
  EXPECT_GT(std::fabs(bnpo_one.metrics[1].loss - bnpo_two.metrics[1].loss),
            1e-5);
}

TEST(DataParallelLearnerTest, TwoRankRunsAreBitwiseIdentical) {
  const RunResult first = Train(2, 2, Options());
  const RunResult second = Train(2, 2, Options());
  EXPECT_EQ(first.weights[0], second.weights[0]);
}

TEST(DataParallelLearnerTest, SftStepsMatchOneRank) {
  const LoadedCheckpoint model = testing::LoadFixture("qwen3_untied");
  std::vector<SftExample> batch;
  for (int i = 0; i < 4; ++i)
    batch.push_back({{3 + i, 17, 29}, std::vector<int32_t>(1 + i * 2, 40 + i)});
  std::vector<std::vector<float>> weights(3);
  std::vector<double> losses(3);
  auto run = [&](int rank, DataParallelGroup* group, int slot) {
    auto learner = GrpoLearner::Create(model.config, model.leaves, nullptr,
                                       nullptr, Options());
    ASSERT_TRUE(learner.ok());
    (*learner)->set_data_parallel(group);
    std::span<const SftExample> mine(batch);
    if (group != nullptr) mine = mine.subspan(rank * 2, 2);
    auto m = (*learner)->SftStep(mine);
    ASSERT_TRUE(m.ok()) << m.status();
    losses[slot] = m->loss;
    const ParamLeaves& w = (*learner)->weights();
    for (size_t i = 0; i < w.size(); ++i)
      weights[slot].insert(weights[slot].end(), w.F32(i).begin(),
                           w.F32(i).end());
  };
  run(0, nullptr, 0);
  OnRanks(2, [&](int rank, DataParallelGroup& group) {
    run(rank, &group, 1 + rank);
  });
  EXPECT_EQ(weights[1], weights[2]);
  EXPECT_DOUBLE_EQ(losses[1], losses[2]);
  // The token mean is over the global batch (lengths 1, 3, 5, 7), not a
  // mean of the ranks' means.
  EXPECT_NEAR(losses[0], losses[1], 1e-6);
  double max_diff = 0;
  for (size_t i = 0; i < weights[0].size(); ++i)
    max_diff =
        std::max(max_diff, std::fabs(double(weights[0][i]) - weights[1][i]));
  EXPECT_LE(max_diff, 1e-6);
}

}  // namespace
}  // namespace rlrt
