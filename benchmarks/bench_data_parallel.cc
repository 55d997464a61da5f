// bench_data_parallel: data parallelism over MPI, run under mpirun:
//
//   mpirun -np 2 build/bin/bench_data_parallel --benchmark_repetitions=3
//
// (Open MPI binds each of two ranks to one core by default; as root add
// --allow-run-as-root.) Rank 0 reports; the other ranks run the same
// benchmarks silently, with fixed iteration counts so every rank makes the
// same collectives.
//
// BM_AllReduce/<dtype>: the gradient of the Qwen3-0.6B shape (596M
// elements; 2.4 GB in float32, 1.2 GB in bfloat16) summed over the ranks
// in rank order, as the learner does: float32 through
// DataParallelGroup::SumLeavesInRankOrder (packing leaves into blocks),
// bfloat16 as one flat buffer (DataParallelGroup::SumInRankOrderBf16).
// Counters: allreduce_bytes_per_s (gradient bytes / seconds),
// memcpy_bytes_per_s (one thread copying the same bytes, in the same run, on
// the same core) and ratio_to_memcpy.
//
// BM_RlStepScaling/<model>: the serial RL step (RunRlLoop, max_staleness
// 0: rollout, then training, then the in-process sync) of a fixed global
// batch, first on rank 0 alone and then on all ranks, each with its
// share; model 0 is qwen3-tiny, 1 the ~100M Qwen3 shape. Each rank splits
// its cores (one, under mpirun's default binding) into a rollout and an
// actor device. Counters: step_seconds_1_rank, step_seconds_n_ranks,
// scaling_efficiency = step_seconds_1_rank / (ranks x
// step_seconds_n_ranks) (1: linear), and the N-rank step's split:
// rollout_seconds, train_seconds (including gradient_reduce_seconds, the
// all-reduce and the wait for the slowest rank), sync_seconds. Means over
// steps 2.. of each phase.
#include <benchmark/benchmark.h>
#include <glog/logging.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/timing.h"
#include "benchmarks/bench_workloads.h"
#include "models/config/model_config.h"
#include "models/forward/dummy_weights.h"
#include "models/forward/model_source.h"
#include "models/io/checkpoint.h"
#include "partition/device.h"
#include "partition/partition_spec.h"
#include "sampler/engine.h"
#include "trainer_bridge/grpo_learner.h"
#include "trainer_bridge/mpi/mpi_group.h"
#include "trainer_bridge/rl_loop.h"

namespace rlrt {
namespace {

MpiGroup* group = nullptr;  // Set by main.

int CoresOfThisRank() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof(set), &set);
  return CPU_COUNT(&set);
}

double MemcpySeconds(void* to, const void* from, size_t bytes) {
  const auto t0 = SteadyClock::now();
  std::memcpy(to, from, bytes);
  benchmark::ClobberMemory();
  return SecondsBetween(t0, SteadyClock::now());
}

void BM_AllReduce(benchmark::State& state) {
  const bool bf16 = state.range(0) == 1;
  const ModelConfig config = PresetConfig("qwen3-0.6b").value();
  double reduce = 0, copy = 0;
  size_t bytes = 0;
  if (!bf16) {
    auto grads = ParamLeaves::Allocate(LeafSpecsFor(config, DType::kF32));
    CHECK(grads.ok());
    for (size_t i = 0; i < grads->size(); ++i)
      std::fill(grads->F32(i).begin(), grads->F32(i).end(), 1e-3f);
    bytes = grads->total_bytes();
    std::vector<std::byte> scratch(bytes);
    CHECK(group->SumLeavesInRankOrder(*grads).ok());  // Faults in.
    for (auto _ : state) {
      const auto t0 = SteadyClock::now();
      CHECK(group->SumLeavesInRankOrder(*grads).ok());
      reduce += SecondsBetween(t0, SteadyClock::now());
      copy += MemcpySeconds(scratch.data(), grads->data(0), bytes);
    }
  } else {
    std::vector<uint16_t> grads(config.NumParams(), F32ToBf16(1e-3f));
    bytes = grads.size() * sizeof(uint16_t);
    std::vector<uint16_t> scratch(grads.size());
    CHECK(group->SumInRankOrderBf16(grads).ok());
    for (auto _ : state) {
      const auto t0 = SteadyClock::now();
      CHECK(group->SumInRankOrderBf16(grads).ok());
      reduce += SecondsBetween(t0, SteadyClock::now());
      copy += MemcpySeconds(scratch.data(), grads.data(), bytes);
    }
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["allreduce_bytes_per_s"] = bytes / (reduce / n);
  state.counters["memcpy_bytes_per_s"] = bytes / (copy / n);
  state.counters["ratio_to_memcpy"] = copy / reduce;
  state.counters["gradient_GB"] = bytes / 1e9;
  state.counters["ranks"] = group->size();
  state.SetLabel(std::string("qwen3-0.6b gradient ") + (bf16 ? "bf16" : "f32"));
}

struct StepSplit {
  double step = 0, rollout = 0, train = 0, reduce = 0, sync = 0;
};

// RunRlLoop for `steps` steps of a global batch of `prompts` prompts,
// with this rank's share when `data_parallel`; means over steps 2.. .
StepSplit RunSteps(const ModelConfig& config, bool data_parallel) {
  constexpr int64_t kSteps = 4, kPrompts = 4, kGenerations = 4;
  constexpr int64_t kPromptTokens = 32, kNewTokens = 32;
  auto devices = DiscoverLocalDevices(2);  // Rollout and actor share cores.
  CHECK(devices.ok());
  auto partition = Partition::Create("rollout=1,actor=1", *devices);
  CHECK(partition.ok()) << partition.status();
  RlLoopOptions loop;
  loop.steps = kSteps;
  loop.batch_size = kPrompts;
  loop.num_generations = kGenerations;
  loop.max_new_tokens = kNewTokens;
  loop.max_staleness = 0;

  auto initial = ParamLeaves::Allocate(LeafSpecsFor(config));
  CHECK(initial.ok());
  CHECK(InitDummyWeights(*initial, 1, &partition->actor()).ok());
  // The engine builds the same dummy weights (same seed) from the shape's
  // config.json; the learner's copy is what it then trains.
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("rlrt_bench_dp_" + std::to_string(getpid()));
  CHECK(SaveCheckpoint(*initial, config, dir).ok());
  EngineOptions engine_options;
  engine_options.model.model_dir = dir.string();
  engine_options.model.load_format = "dummy";
  engine_options.model.seed = 1;
  engine_options.max_running_requests = kPrompts * kGenerations;
  engine_options.context_length = kPromptTokens + kNewTokens;
  engine_options.max_total_tokens =
      kPrompts * kGenerations * engine_options.context_length;
  auto engine = SamplerEngine::Create(engine_options, &partition->rollout());
  CHECK(engine.ok()) << engine.status();
  std::filesystem::remove_all(dir);

  GrpoOptions options;
  options.sample_vocab = (*engine)->vocab_size();
  options.lr.peak = 1e-5;
  auto learner = GrpoLearner::Create(config, *initial, &partition->actor(),
                                     nullptr, options);
  CHECK(learner.ok()) << learner.status();
  if (data_parallel) (*learner)->set_data_parallel(group);
  LowerHalfTask task((*engine)->vocab_size(), kPromptTokens);
  StepSplit split;
  int counted = 0;
  auto summary = RunRlLoop(
      **engine, **learner, task, loop, [&](const RlStepMetrics& m) -> Status {
        if (m.step == 1) return OkStatus();  // Faults in every buffer.
        split.step += m.step_seconds;
        split.rollout += m.rollout_seconds;
        split.train += m.grpo.train_seconds + m.grpo.reference_seconds;
        split.reduce += m.grpo.gradient_reduce_seconds;
        split.sync += m.sync_seconds;
        ++counted;
        return OkStatus();
      });
  CHECK(summary.ok()) << summary.status();
  for (double* v :
       {&split.step, &split.rollout, &split.train, &split.reduce, &split.sync})
    *v /= counted;
  return split;
}

void BM_RlStepScaling(benchmark::State& state) {
  const ModelConfig config = state.range(0) == 0
                                 ? PresetConfig("qwen3-tiny").value()
                                 : Qwen3Shape100M();
  StepSplit one, many;
  for (auto _ : state) {
    // Rank 0 alone with the whole batch; the others wait (asleep) at the
    // next collective.
    if (group->rank() == 0) one = RunSteps(config, /*data_parallel=*/false);
    CHECK(group->AllGather(0).ok());
    many = RunSteps(config, /*data_parallel=*/true);
  }
  state.counters["step_seconds_1_rank"] = one.step;
  state.counters["step_seconds_n_ranks"] = many.step;
  state.counters["scaling_efficiency"] = one.step / (group->size() * many.step);
  state.counters["rollout_seconds_1_rank"] = one.rollout;
  state.counters["train_seconds_1_rank"] = one.train;
  state.counters["rollout_seconds"] = many.rollout;
  state.counters["train_seconds"] = many.train;
  state.counters["gradient_reduce_seconds"] = many.reduce;
  state.counters["sync_seconds"] = many.sync;
  state.counters["ranks"] = group->size();
  state.counters["cores_per_rank"] = CoresOfThisRank();
  state.SetLabel(state.range(0) == 0 ? "qwen3-tiny" : "qwen3-100m-shape");
}

// Fixed iteration counts: every rank must run exactly the same
// collectives.
BENCHMARK(BM_AllReduce)
    ->Arg(0)
    ->Arg(1)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RlStepScaling)
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

// Ranks other than 0 run silently.
class QuietReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  auto group = rlrt::MpiGroup::Create(&argc, &argv, std::chrono::hours(1));
  CHECK(group.ok()) << group.status();
  rlrt::group = group->get();
  if ((*group)->rank() != 0) {
    // Only rank 0 writes --benchmark_out.
    int kept = 1;
    for (int i = 1; i < argc; ++i)
      if (std::strncmp(argv[i], "--benchmark_out", 15) != 0)
        argv[kept++] = argv[i];
    argc = kept;
  }
  benchmark::Initialize(&argc, argv);
  if ((*group)->rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    rlrt::QuietReporter quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);
  }
  benchmark::Shutdown();
  return 0;
}
