// Workloads the benchmarks share: a ~100M-parameter Qwen3 shape and a toy
// RL task whose rewards vary within a group.
#ifndef RLRT_BENCHMARKS_BENCH_WORKLOADS_H_
#define RLRT_BENCHMARKS_BENCH_WORKLOADS_H_

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "models/config/model_config.h"
#include "trainer_bridge/rl_task.h"

namespace rlrt {

// Qwen3-0.6B's family (tied embeddings, qk-norm, the real vocabulary)
// shrunk to about 100M parameters, 78M of them the embedding.
ModelConfig Qwen3Shape100M();

// Prompts of random ids; the reward is the fraction of completion tokens in
// the lower half of the vocabulary, so rewards vary within a group and the
// gradient is not zero.
class LowerHalfTask : public RlTask {
 public:
  LowerHalfTask(int64_t vocab, int64_t prompt_tokens)
      : vocab_(vocab), prompt_tokens_(prompt_tokens) {}

  StatusOr<std::vector<std::vector<int32_t>>> Prompts(
      int64_t index, int64_t batch_size) override {
    std::mt19937_64 rng(static_cast<uint64_t>(index));
    std::vector<std::vector<int32_t>> prompts(batch_size);
    for (auto& p : prompts)
      for (int64_t t = 0; t < prompt_tokens_; ++t)
        p.push_back(static_cast<int32_t>(rng() % vocab_));
    return prompts;
  }

  Reward Score(int64_t, int64_t, const SampleOutput& completion) override {
    if (completion.token_ids.empty()) return {};
    const auto lower =
        std::count_if(completion.token_ids.begin(), completion.token_ids.end(),
                      [&](int32_t id) { return id < vocab_ / 2; });
    const double fraction =
        static_cast<double>(lower) / completion.token_ids.size();
    return {fraction, {{"lower_half", fraction}}};
  }

 private:
  const int64_t vocab_;
  const int64_t prompt_tokens_;
};

}  // namespace rlrt

#endif  // RLRT_BENCHMARKS_BENCH_WORKLOADS_H_
