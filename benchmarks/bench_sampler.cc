// bench_sampler: the rollout engine on a GRPO-shaped workload, against the
// machine's own limits measured in the same run.
//
// BM_Rollout/<model>/<devices>: 16 prompts x n = 8 samples, 128-token
// prompts, 256 new tokens each, temperature 1 (flags below change the
// shape), all submitted at once on qwen3-tiny or the Qwen3-0.6B shape with
// dummy weights. Counters:
//  - output_tokens_per_s;
//  - speedup_vs_sequential: against the same requests submitted one at a
//    time (each waits for the previous one). For the 0.6B shape that takes
//    too long in full, so the sequential rate comes from the first
//    --sequential_requests requests (the rate is what is compared);
//  - ratio_to_sgemm_peak: the forward FLOPs executed (prefill once per
//    prompt, decode per sample at its true context) per second over
//    single-thread sgemm GFLOP/s x devices.
// BM_UpdateStall/<model>/<devices>: while 16 sequences decode, whole-model
// UpdateParams; update_stall_ms is how long decoding paused (validation and
// in-place copy at a step boundary; median of the updates), memcpy_ms the
// time one thread's memcpy takes for the same bytes, ratio_to_memcpy their
// ratio.
// BM_LoraDecode/<model>/<devices>: decoding at batch 32 (32 prompts of 16
// tokens, n = 1, 128 new tokens) with no adapter, with one LoRA adapter
// (rank 16, all seven projections) for every request, and with 4 distinct
// adapters mixed in the batch, interleaved over --lora_rounds rounds (the
// median of each). Counters: the three tokens/s, and their ratios to the
// base's, `ratio_one_adapter_to_base` and `ratio_four_adapters_to_base`
// (the goals: one adapter costs at most 15%, four mixed at most
// 25%, i.e. ratios of at least 0.87 and 0.80).
// Quote medians: --benchmark_repetitions=3 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/timing.h"
#include "benchmarks/bench_limits.h"
#include "models/leaf_init.h"
#include "models/lora/lora_adapter.h"
#include "sampler/engine.h"
#include "trainer_bridge/update_builder.h"

DEFINE_int32(prompts, 16, "Prompts per rollout batch.");
DEFINE_int32(samples, 8, "Samples per prompt (n).");
DEFINE_int32(prompt_tokens, 128, "Tokens per prompt.");
DEFINE_int32(new_tokens, 256, "New tokens per sample.");
DEFINE_string(dtype, "auto",
              "Weight dtype: auto (dummy weights: bfloat16), bfloat16 or "
              "float32.");
DEFINE_bool(release_idle_kv_memory, false,
            "Engine: give free KV pages back to the kernel when idle "
            "(EngineOptions::release_idle_kv_memory).");
DEFINE_int32(lora_rounds, 3, "BM_LoraDecode: interleaved rounds per case.");
DEFINE_int32(sequential_requests_0_6b, 1,
             "Requests timed one at a time for the 0.6B shape (all of them "
             "for qwen3-tiny).");

namespace rlrt {
namespace {

const char* kPresets[] = {"qwen3-tiny", "qwen3-0.6b"};

std::unique_ptr<SamplerEngine> MakeEngine(const std::string& preset, Mesh* mesh,
                                          int64_t sequences) {
  EngineOptions o;
  o.model.preset = preset;
  o.model.load_format = "dummy";
  o.model.seed = 1;
  o.model.dtype = FLAGS_dtype;
  o.max_running_requests = sequences;
  o.context_length = FLAGS_prompt_tokens + FLAGS_new_tokens;
  o.page_size = 16;
  o.max_prefill_tokens = 2048;
  o.release_idle_kv_memory = FLAGS_release_idle_kv_memory;
  // Every sample at full length, the prompt pages shared within a group.
  const int64_t pages_per_sequence = (o.context_length + 15) / 16;
  const int64_t prompt_pages = FLAGS_prompt_tokens / 16;
  o.max_total_tokens =
      16 * FLAGS_prompts *
      (pages_per_sequence +
       (FLAGS_samples - 1) * (pages_per_sequence - prompt_pages));
  auto engine = SamplerEngine::Create(o, mesh);
  CHECK(engine.ok()) << engine.status();
  return std::move(*engine);
}

std::vector<GenerateRequest> Workload(int64_t vocab) {
  std::mt19937 rng(7);
  std::vector<GenerateRequest> requests;
  for (int p = 0; p < FLAGS_prompts; ++p) {
    GenerateRequest r;
    for (int t = 0; t < FLAGS_prompt_tokens; ++t)
      r.input_ids.push_back(static_cast<int32_t>(rng() % vocab));
    r.n = FLAGS_samples;
    r.sampling.temperature = 1.0f;
    r.seed = p;
    r.stop.max_new_tokens = FLAGS_new_tokens;
    r.ignore_eos = true;
    requests.push_back(std::move(r));
  }
  return requests;
}

double RolloutFlops(const ModelConfig& c) {
  double flops = 0;
  for (int64_t p = 1; p <= FLAGS_prompt_tokens; ++p)
    flops += FLAGS_prompts * ForwardFlops(c, 1, 0, p);
  flops += FLAGS_prompts * ForwardFlops(c, 0, 1, 0);  // First token's logits.
  for (int64_t t = 1; t < FLAGS_new_tokens; ++t) {
    flops += double(FLAGS_prompts) * FLAGS_samples *
             ForwardFlops(c, 1, 1, FLAGS_prompt_tokens + t);
  }
  return flops;
}

int64_t RunAll(SamplerEngine& engine,
               const std::vector<GenerateRequest>& requests, size_t count,
               bool one_at_a_time) {
  int64_t tokens = 0;
  std::vector<RequestHandle> handles;
  for (size_t i = 0; i < count; ++i) {
    auto h = engine.Submit(requests[i]);
    CHECK(h.ok()) << h.status();
    if (one_at_a_time) {
      tokens += h->Wait()->completion_tokens;
    } else {
      handles.push_back(*h);
    }
  }
  for (auto& h : handles) tokens += h.Wait()->completion_tokens;
  return tokens;
}

void BM_Rollout(benchmark::State& state) {
  const std::string preset = kPresets[state.range(0)];
  auto mesh = BenchMesh(static_cast<int>(state.range(1)));
  auto engine =
      MakeEngine(preset, mesh.get(), int64_t{FLAGS_prompts} * FLAGS_samples);
  const std::vector<GenerateRequest> requests = Workload(engine->vocab_size());
  const size_t sequential =
      state.range(0) == 0
          ? requests.size()
          : std::min<size_t>(FLAGS_sequential_requests_0_6b, requests.size());
  const auto s0 = SteadyClock::now();
  const int64_t sequential_tokens = RunAll(*engine, requests, sequential, true);
  const double sequential_rate =
      sequential_tokens / SecondsBetween(s0, SteadyClock::now());

  double seconds = 0;
  int64_t tokens = 0;
  for (auto _ : state) {
    const auto t0 = SteadyClock::now();
    tokens += RunAll(*engine, requests, requests.size(), false);
    seconds += SecondsBetween(t0, SteadyClock::now());
  }
  const double rate = tokens / seconds;
  const double gflops =
      RolloutFlops(engine->config()) * state.iterations() / seconds / 1e9;
  state.counters["output_tokens_per_s"] = rate;
  state.counters["sequential_tokens_per_s"] = sequential_rate;
  state.counters["speedup_vs_sequential"] = rate / sequential_rate;
  state.counters["GFLOPs"] = gflops;
  state.counters["ratio_to_sgemm_peak"] =
      gflops / (SgemmPeakGflops() * mesh->size());
  state.SetLabel(preset + " devices=" + std::to_string(mesh->size()) +
                 " dtype=" + FLAGS_dtype);
}

void BM_UpdateStall(benchmark::State& state) {
  const std::string preset = kPresets[state.range(0)];
  auto mesh = BenchMesh(static_cast<int>(state.range(1)));
  auto engine = MakeEngine(preset, mesh.get(), 16);
  auto trainer = LoadModel(
      {.model_dir = "", .preset = preset, .load_format = "dummy", .seed = 2},
      mesh.get());
  CHECK(trainer.ok());
  proto::UpdateParams update;
  CHECK(BuildUpdateParams(trainer->weights, 0, BuildOptions{}, mesh.get(),
                          &update)
            .ok());
  const double bytes = static_cast<double>(trainer->weights.total_bytes());
  std::vector<double> stalls;
  uint64_t version = 0;
  for (auto _ : state) {
    // Keep sequences decoding through the update.
    GenerateRequest r;
    r.input_ids = {1, 2, 3, 4};
    r.n = 16;
    r.sampling.temperature = 1.0f;
    r.stop.max_new_tokens = FLAGS_new_tokens;
    r.ignore_eos = true;
    std::atomic<int> seen{0};
    r.on_token = [&](const TokenEvent&) { seen.fetch_add(1); };
    auto h = engine->Submit(r);
    CHECK(h.ok());
    while (seen.load() < 32) std::this_thread::yield();
    update.set_version(++version);
    auto report = engine->UpdateParams(update);
    CHECK(report.ok()) << report.status();
    stalls.push_back(engine->Stats().last_update_stall_ms);
    engine->Abort(h->id());
    auto result = h->Wait();
    CHECK(result.ok());
  }
  std::sort(stalls.begin(), stalls.end());
  const double stall_ms = stalls[stalls.size() / 2];
  const double memcpy_ms = bytes / MemcpyBytesPerSecond() * 1e3;
  state.counters["update_stall_ms"] = stall_ms;
  state.counters["memcpy_ms"] = memcpy_ms;
  state.counters["ratio_to_memcpy"] = stall_ms / memcpy_ms;
  state.counters["bytes"] = bytes;
  state.SetLabel(preset + " devices=" + std::to_string(mesh->size()) +
                 " dtype=" + FLAGS_dtype);
}

// Decode tokens/s of 32 single-sample requests naming `loras` round-robin
// ("" is the base).
double DecodeRate(SamplerEngine& engine,
                  const std::vector<std::string>& loras) {
  std::mt19937 rng(11);
  std::vector<RequestHandle> handles;
  const auto t0 = SteadyClock::now();
  for (int p = 0; p < 32; ++p) {
    GenerateRequest r;
    for (int t = 0; t < 16; ++t)
      r.input_ids.push_back(static_cast<int32_t>(rng() % engine.vocab_size()));
    r.sampling.temperature = 1.0f;
    r.seed = p;
    r.stop.max_new_tokens = 128;
    r.ignore_eos = true;
    r.lora_name = loras[p % loras.size()];
    auto h = engine.Submit(std::move(r));
    CHECK(h.ok()) << h.status();
    handles.push_back(*h);
  }
  int64_t tokens = 0;
  for (auto& h : handles) tokens += h.Wait()->completion_tokens;
  return tokens / SecondsBetween(t0, SteadyClock::now());
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void BM_LoraDecode(benchmark::State& state) {
  const std::string preset = kPresets[state.range(0)];
  auto mesh = BenchMesh(static_cast<int>(state.range(1)));
  EngineOptions o;
  o.model.preset = preset;
  o.model.load_format = "dummy";
  o.model.seed = 1;
  o.model.dtype = FLAGS_dtype;
  o.max_running_requests = 32;
  o.context_length = 16 + 128;
  o.max_total_tokens = 32 * (16 + 128 + 16);
  o.max_loras = 4;
  o.max_lora_rank = 16;
  auto engine = SamplerEngine::Create(o, mesh.get());
  CHECK(engine.ok()) << engine.status();
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  for (size_t i = 0; i < names.size(); ++i) {
    auto adapter = LoraAdapter::Create((*engine)->config(),
                                       LoraConfig{.rank = 16, .alpha = 32});
    CHECK(adapter.ok());
    CHECK((*adapter)->InitLikePeft(i + 1, mesh.get()).ok());
    CHECK(Perturb((*adapter)->leaves(), i + 7, 0.01, 1 << 20, mesh.get()).ok());
    CHECK((*engine)->AddAdapter(names[i], std::move(*adapter), "bench").ok());
  }
  std::vector<double> base, one, four;
  for (auto _ : state) {
    for (int round = 0; round < FLAGS_lora_rounds; ++round) {
      base.push_back(DecodeRate(**engine, {""}));
      one.push_back(DecodeRate(**engine, {"a"}));
      four.push_back(DecodeRate(**engine, names));
    }
  }
  const double b = Median(base), o1 = Median(one), o4 = Median(four);
  state.counters["base_tokens_per_s"] = b;
  state.counters["one_adapter_tokens_per_s"] = o1;
  state.counters["four_adapters_tokens_per_s"] = o4;
  state.counters["ratio_one_adapter_to_base"] = o1 / b;
  state.counters["ratio_four_adapters_to_base"] = o4 / b;
  state.SetLabel(preset + " devices=" + std::to_string(mesh->size()) +
                 " dtype=" + FLAGS_dtype);
}

BENCHMARK(BM_Rollout)
    ->ArgsProduct({{0, 1}, {1, 2}})
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK(BM_LoraDecode)
    ->ArgsProduct({{0, 1}, {1, 2}})
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK(BM_UpdateStall)
    ->ArgsProduct({{0, 1}, {1, 2}})
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
