// bench_trainer: the training step against the machine's own limits, and
// how much the RL loop's bounded staleness hides rollout behind training.
//
// BM_TrainStep/<model>/<workers>/<bf16>: one TrainableTransformer Forward (with
// logprobs) + Backward over 8 sequences x 128 tokens, targets on the last
// half (512 scored tokens), for qwen3-tiny and a ~100M-parameter Qwen3
// shape (hidden 512, 8 layers, the real 151,936-id vocabulary, tied), dummy
// weights, on 1 and 2 workers. Counters:
//  - train_tokens_per_s: sequence tokens (1024 per step) per second;
//    target_tokens_per_s: scored tokens per second;
//  - gflops: model FLOPs, 3 x the forward (every layer's matmuls and causal
//    attention at each position's true context, the LM head on target rows
//    only) per second; executed_gflops adds Backward's recompute of the
//    layers and of the LM head's logits (4 x the forward);
//  - ratio_to_sgemm_peak: gflops / (single-thread sgemm GFLOP/s, measured
//    in this run, x workers);
//  - with bf16=1 the matrices are BF16 (the mixed-precision trainer's
//    compute copy) and so are all their gradients (TrainableTransformer's
//    BF16 gradients; the learner keeps the embedding's float32); bf16=2
//    keeps the gradients float32.
//    ratio_to_bf16_peak is gflops / (the single-thread vdpbf16ps peak x
//    workers).
// BM_RlLoopOverlap/<staleness>: RunRlLoop for 5 steps of a toy task
// on qwen3-tiny, the sampler on one core and the learner on the other.
// Counters are means over steps 2.. (step 1 has nothing to overlap with):
// step_seconds (wall time), rollout_seconds, train_seconds (+ reference),
// sum_seconds = rollout + train, max_seconds = max(rollout, train), and
// overlap_efficiency = max_seconds / step_seconds (1: the shorter phase is
// fully hidden; a serial loop gets max / sum).
// BM_LoraStep/<model>/<workers>: a GRPO learner step (forward with
// logprobs, backward, AdamW) over the same 8 x 128-token batch, for full
// fine-tuning and for a LoRA adapter (rank 16, all seven projections) on
// the same shape and weights. Counters: full_tokens_per_s,
// lora_tokens_per_s and their ratio `ratio_lora_to_full_step`; memory as
// the process's resident-set growth from creating each learner through
// its first step (full_step_rss_MB, lora_step_rss_MB, LoRA first), and the
// trained state each holds (weights or adapter, gradients, two AdamW
// moments: full_state_MB, lora_state_MB).
// Quote medians: --benchmark_repetitions=3
// --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "base/timing.h"
#include "benchmarks/bench_limits.h"
#include "benchmarks/bench_workloads.h"
#include "models/forward/dummy_weights.h"
#include "models/forward/model_source.h"
#include "models/lora/lora_config.h"
#include "models/train/trainable_transformer.h"
#include "partition/device.h"
#include "partition/partition_spec.h"
#include "sampler/engine.h"
#include "trainer_bridge/grpo_learner.h"
#include "trainer_bridge/rl_loop.h"
#include "trainer_bridge/rl_task.h"

namespace rlrt {
namespace {

constexpr int64_t kSequences = 8;
constexpr int64_t kSequenceTokens = 128;
// The RL loop's workload: 4 prompts x 4 completions of up to 64 tokens.
// Sampling then takes about half as long as training (measured: 0.9-1.1 s
// vs 2.0-2.2 s per step). qwen3-tiny's cost per token, on both sides, is
// mostly its 151,936-wide LM head, so batch and length scale both alike;
// fewer sequences per decode step (tried: 1 x 2, 1 x 4, 2 x 4) did not
// bring the two closer.
constexpr int64_t kRlSteps = 5;
constexpr int64_t kRlPrompts = 4;
constexpr int64_t kRlGenerations = 4;
constexpr int64_t kRlPromptTokens = 32;
constexpr int64_t kRlNewTokens = 64;

// One model per (shape, workers), built once and kept for the run.
struct TrainBench {
  std::unique_ptr<Mesh> mesh;
  ModelConfig config;
  std::unique_ptr<ParamLeaves> weights;
  std::unique_ptr<ParamLeaves> grads;
  std::unique_ptr<TrainableTransformer> model;
};

// dtype: 0 float32, 1 BF16 weights and gradients, 2 BF16 weights with
// float32 gradients.
TrainBench& TrainBenchFor(int64_t shape, int workers, int64_t dtype) {
  static std::map<std::tuple<int64_t, int, int64_t>,
                  std::unique_ptr<TrainBench>>
      cache;
  auto& slot = cache[{shape, workers, dtype}];
  const bool bf16 = dtype != 0;
  if (slot) return *slot;
  slot = std::make_unique<TrainBench>();
  slot->mesh = BenchMesh(workers);
  slot->config =
      shape == 0 ? PresetConfig("qwen3-tiny").value() : Qwen3Shape100M();
  auto weights = ParamLeaves::Allocate(
      LeafSpecsFor(slot->config, bf16 ? DType::kBF16 : DType::kF32));
  auto grads = ParamLeaves::Allocate(
      LeafSpecsFor(slot->config, dtype == 1 ? DType::kBF16 : DType::kF32));
  CHECK(weights.ok() && grads.ok());
  slot->weights = std::make_unique<ParamLeaves>(std::move(weights).value());
  slot->grads = std::make_unique<ParamLeaves>(std::move(grads).value());
  CHECK(InitDummyWeights(*slot->weights, 1, slot->mesh.get()).ok());
  TrainableTransformerOptions options;
  options.max_tokens = kSequences * kSequenceTokens;
  auto model = TrainableTransformer::Create(slot->config, *slot->weights,
                                            slot->mesh.get(), options);
  CHECK(model.ok()) << model.status();
  slot->model = std::move(model).value();
  return *slot;
}

// Forward FLOPs of the batch: position p attends to p + 1 keys.
double BatchForwardFlops(const ModelConfig& c, int64_t targets) {
  double flops = ForwardFlops(c, 0, static_cast<double>(targets), 0);
  for (int64_t p = 0; p < kSequenceTokens; ++p)
    flops += ForwardFlops(c, kSequences, 0, p + 1);
  return flops;
}

void BM_TrainStep(benchmark::State& state) {
  const bool bf16 = state.range(2) != 0;
  TrainBench& b = TrainBenchFor(state.range(0), state.range(1), state.range(2));
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> tokens(kSequences);
  std::vector<int32_t> targets;
  for (int64_t t = kSequenceTokens / 2 - 1; t + 1 < kSequenceTokens; ++t)
    targets.push_back(static_cast<int32_t>(t));
  std::vector<TrainSequence> batch;
  for (auto& seq : tokens) {
    for (int64_t i = 0; i < kSequenceTokens; ++i)
      seq.push_back(static_cast<int32_t>(rng() % b.config.vocab_size));
    batch.push_back({seq, targets});
  }
  const int64_t num_targets = NumTargets(batch);
  std::vector<float> logprobs(num_targets);
  // As a token-mean cross-entropy would give.
  const std::vector<float> dloss(num_targets, -1.0f / num_targets);
  // Untimed: the first call also faults in the workspace and gradients.
  CHECK(b.model->Forward(batch, 1.0f, logprobs).ok());
  CHECK(b.model->Backward(dloss, *b.grads).ok());
  double timed = 0;
  for (auto _ : state) {
    const auto t0 = SteadyClock::now();
    CHECK(b.model->Forward(batch, 1.0f, logprobs).ok());
    CHECK(b.model->Backward(dloss, *b.grads).ok());
    timed += SecondsBetween(t0, SteadyClock::now());
  }
  const double seconds = timed / state.iterations();
  const double forward = BatchForwardFlops(b.config, num_targets);
  const double gflops = 3 * forward / seconds / 1e9;
  state.counters["train_tokens_per_s"] = kSequences * kSequenceTokens / seconds;
  state.counters["target_tokens_per_s"] = num_targets / seconds;
  state.counters["gflops"] = gflops;
  state.counters["executed_gflops"] = 4 * forward / seconds / 1e9;
  state.counters["ratio_to_sgemm_peak"] =
      gflops / (SgemmPeakGflops() * b.mesh->size());
  if (bf16)
    state.counters["ratio_to_bf16_peak"] =
        gflops / (Bf16DotPeakGflops() * b.mesh->size());
  state.counters["params_M"] = b.config.NumParams() / 1e6;
  state.SetLabel((state.range(0) == 0 ? "qwen3-tiny" : "qwen3-100m-shape") +
                 std::string(" workers=") + std::to_string(b.mesh->size()) +
                 (!bf16                 ? " f32"
                  : state.range(2) == 1 ? " bf16"
                                        : " bf16 f32-grads"));
}

void BM_RlLoopOverlap(benchmark::State& state) {
  const int64_t staleness = state.range(0);
  auto devices = DiscoverLocalDevices();
  CHECK(devices.ok()) << devices.status();
  auto partition = Partition::Create("rollout=1,actor=1", *devices);
  CHECK(partition.ok()) << partition.status();
  const ModelSource source{.model_dir = "",
                           .preset = "qwen3-tiny",
                           .load_format = "dummy",
                           .seed = 1};
  RlLoopOptions loop;
  loop.steps = kRlSteps;
  loop.batch_size = kRlPrompts;
  loop.num_generations = kRlGenerations;
  loop.max_new_tokens = kRlNewTokens;
  loop.max_staleness = staleness;

  EngineOptions engine_options;
  engine_options.model = source;
  const int64_t in_flight =
      loop.batch_size * loop.num_generations * (staleness + 1);
  engine_options.max_running_requests = in_flight;
  engine_options.context_length = kRlPromptTokens + kRlNewTokens;
  engine_options.max_total_tokens = in_flight * engine_options.context_length;
  auto engine = SamplerEngine::Create(engine_options, &partition->rollout());
  CHECK(engine.ok()) << engine.status();

  GrpoOptions options;
  options.temperature = loop.temperature;
  options.sample_vocab = (*engine)->vocab_size();
  options.lr.peak = 1e-5;
  auto initial = LoadModel(source, &partition->actor());
  CHECK(initial.ok()) << initial.status();
  auto learner = GrpoLearner::Create(initial->config, initial->weights,
                                     &partition->actor(), nullptr, options);
  CHECK(learner.ok()) << learner.status();
  LowerHalfTask task((*engine)->vocab_size(), kRlPromptTokens);

  double step = 0, rollout = 0, train = 0, sync = 0;
  int64_t counted = 0;
  for (auto _ : state) {
    auto summary = RunRlLoop(
        **engine, **learner, task, loop, [&](const RlStepMetrics& m) -> Status {
          if (m.step == 1) return OkStatus();
          step += m.step_seconds;
          rollout += m.rollout_seconds;
          train += m.grpo.train_seconds + m.grpo.reference_seconds;
          sync += m.sync_seconds;
          ++counted;
          return OkStatus();
        });
    CHECK(summary.ok()) << summary.status();
  }
  const double n = static_cast<double>(counted);
  state.counters["step_seconds"] = step / n;
  state.counters["rollout_seconds"] = rollout / n;
  state.counters["train_seconds"] = train / n;
  state.counters["sync_seconds"] = sync / n;
  state.counters["sum_seconds"] = (rollout + train) / n;
  state.counters["max_seconds"] = std::max(rollout, train) / n;
  state.counters["overlap_efficiency"] = std::max(rollout, train) / step;
  state.SetLabel("qwen3-tiny staleness=" + std::to_string(staleness));
}

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

void BM_LoraStep(benchmark::State& state) {
  auto mesh = BenchMesh(static_cast<int>(state.range(1)));
  const ModelConfig config = state.range(0) == 0
                                 ? PresetConfig("qwen3-tiny").value()
                                 : Qwen3Shape100M();
  auto base = ParamLeaves::Allocate(LeafSpecsFor(config));
  CHECK(base.ok());
  CHECK(InitDummyWeights(*base, 1, mesh.get()).ok());
  std::mt19937 rng(3);
  std::vector<Completion> batch;
  for (int64_t i = 0; i < kSequences; ++i) {
    Completion c;
    for (int64_t t = 0; t < kSequenceTokens / 2; ++t) {
      c.prompt.push_back(static_cast<int32_t>(rng() % config.vocab_size));
      c.tokens.push_back(static_cast<int32_t>(rng() % config.vocab_size));
    }
    c.behaviour_logprobs.assign(c.tokens.size(), -12.0f);
    c.reward = static_cast<double>(i % 2);
    batch.push_back(std::move(c));
  }
  GrpoOptions g;
  g.lr.peak = 1e-4;
  g.loss.beta = 0;       // No reference pass: the step alone.
  g.loss.epsilon = 1e9;  // Nothing clipped: every token has a gradient.
  g.max_micro_batch_tokens = kSequences * kSequenceTokens;
  struct Measured {
    double tokens_per_s = 0;
    double rss_mb = 0;
    double state_mb = 0;
  };
  auto measure = [&](bool lora) {
    GrpoOptions o = g;
    if (lora) o.lora = LoraConfig{.rank = 16, .alpha = 32};
    const int64_t rss0 = ResidentBytes();
    auto learner = GrpoLearner::Create(config, *base, mesh.get(), nullptr, o);
    CHECK(learner.ok()) << learner.status();
    CHECK((*learner)->Step(batch, 2).ok());  // Faults in every buffer.
    Measured m;
    m.rss_mb = (ResidentBytes() - rss0) / 1e6;
    m.state_mb = 4.0 * (*learner)->gradients().total_bytes() / 1e6;
    constexpr int kSteps = 3;
    const auto t0 = SteadyClock::now();
    for (int i = 0; i < kSteps; ++i) CHECK((*learner)->Step(batch, 2).ok());
    m.tokens_per_s = kSteps * kSequences * kSequenceTokens /
                     SecondsBetween(t0, SteadyClock::now());
    return m;
  };
  Measured lora, full;
  for (auto _ : state) {
    lora = measure(true);
    full = measure(false);
  }
  state.counters["full_tokens_per_s"] = full.tokens_per_s;
  state.counters["lora_tokens_per_s"] = lora.tokens_per_s;
  state.counters["ratio_lora_to_full_step"] =
      lora.tokens_per_s / full.tokens_per_s;
  state.counters["full_step_rss_MB"] = full.rss_mb;
  state.counters["lora_step_rss_MB"] = lora.rss_mb;
  state.counters["full_state_MB"] = full.state_mb;
  state.counters["lora_state_MB"] = lora.state_mb;
  state.SetLabel((state.range(0) == 0 ? "qwen3-tiny" : "qwen3-100m-shape") +
                 std::string(" workers=") + std::to_string(mesh->size()));
}

BENCHMARK(BM_TrainStep)
    ->ArgsProduct({{0, 1}, {1, 2}, {0, 1, 2}})
    ->ArgNames({"model", "workers", "bf16"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_LoraStep)
    ->ArgsProduct({{0, 1}, {1, 2}})
    ->ArgNames({"model", "workers"})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_RlLoopOverlap)
    ->DenseRange(0, 1)
    ->ArgNames({"staleness"})
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace
}  // namespace rlrt

BENCHMARK_MAIN();
