// bench_sampling: time to draw one token from a Qwen3-sized row of logits
// (151,669 ids), for the parameter sets a GRPO rollout uses.
//   bench_sampling --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "sampler/sampling.h"

namespace rlrt {
namespace {

constexpr int64_t kVocab = 151669;

void BM_SampleToken(benchmark::State& state) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> logits(kVocab);
  for (float& l : logits) l = d(rng);
  SamplingParams p;
  p.temperature = state.range(0) / 10.0f;
  p.top_k = static_cast<int32_t>(state.range(1));
  p.top_p = state.range(2) / 100.0f;
  SamplingScratch scratch(kVocab);
  uint64_t step = 0;
  for (auto _ : state) {
    auto r = SampleToken(logits.data(), kVocab, p, step++, scratch);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
// temperature x10, top_k, top_p x100
BENCHMARK(BM_SampleToken)
    ->Args({10, 0, 100})
    ->Args({0, 0, 100})
    ->Args({7, 0, 95})
    ->Args({10, 50, 100})
    ->ArgNames({"temp_x10", "top_k", "top_p_x100"})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace rlrt

BENCHMARK_MAIN();
