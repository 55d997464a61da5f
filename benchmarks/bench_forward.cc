// bench_forward: forward-pass throughput against the machine's own limits.
//
// For qwen3-tiny and the Qwen3-0.6B shape (dummy weights), on a mesh of 1 and
// of 2 devices, with three variants: 0 = float32 weights and the
// row-invariant kernel, 1 = float32 and OpenBLAS, 2 = BF16 weights and the
// row-invariant BF16 kernel:
//  - BM_Prefill: batch of B prompts of kPromptTokens tokens in one call;
//  - BM_Decode: one decode step for B sequences holding --decode_context
//    tokens (64 by default; a rollout of 128-token prompts and 128 new
//    tokens averages 192, where attention over the KV cache weighs more).
// Counters: tokens_per_s; GFLOPs (matmul FLOPs 2 * params + attention);
// ratio_to_sgemm_peak = achieved GFLOP/s / (single-thread OpenBLAS sgemm
// GFLOP/s x devices), the peak measured in this run; for BF16,
// ratio_to_bf16_peak against the vdpbf16ps peak (bench_limits.h) likewise;
// for decode at batch 1, weight_GB_per_s (every weight is read once per
// token) and ratio_to_read_bandwidth = that / the streaming-read limit of
// the same number of cores (StreamReadBytesPerSecond), and
// ratio_to_memcpy_bandwidth against one thread's memcpy, all measured in
// this run.
// Quote medians: --benchmark_repetitions=5
// --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>

#include "base/timing.h"
#include "benchmarks/bench_limits.h"
#include "models/config/model_config.h"
#include "models/forward/kv_cache.h"
#include "models/forward/model_source.h"
#include "models/forward/transformer.h"
#include "models/page_arena.h"
#include "partition/device.h"
#include "partition/mesh.h"

DEFINE_int32(decode_context, 64,
             "BM_Decode: tokens each sequence holds before the decoded one.");

namespace rlrt {
namespace {

constexpr int64_t kPromptTokens = 32;
constexpr int64_t kPageSize = 16;

int64_t DecodeContext() {
  return std::clamp<int64_t>(FLAGS_decode_context, 1, 1 << 16);
}

// Models are built once per (preset, devices) and kept for the run.
struct Bench {
  std::unique_ptr<Mesh> mesh;
  std::unique_ptr<LoadedModel> model;
  std::unique_ptr<Transformer> transformer;
  std::unique_ptr<KvCache> cache;
};

Bench& BenchFor(const std::string& preset, int devices, int64_t variant) {
  static std::map<std::tuple<std::string, int, int64_t>, std::unique_ptr<Bench>>
      cache;
  auto& slot = cache[{preset, devices, variant}];
  if (!slot) {
    slot = std::make_unique<Bench>();
    slot->mesh = BenchMesh(devices);
    auto model = LoadModel(
        {"", preset, "dummy", 1,
         std::string(DTypeFlagName(variant == 2 ? DType::kBF16 : DType::kF32))},
        slot->mesh.get());
    CHECK(model.ok()) << model.status();
    slot->model = std::make_unique<LoadedModel>(std::move(model).value());
    TransformerOptions options;
    options.max_batch_tokens = 32 * kPromptTokens;
    options.max_context = DecodeContext() + 64;
    options.matmul =
        variant == 1 ? MatmulKernel::kOpenBlas : MatmulKernel::kRowInvariant;
    slot->transformer =
        std::move(Transformer::Create(slot->model->config, slot->model->weights,
                                      slot->mesh.get(), options))
            .value();
    slot->cache =
        std::move(KvCache::Create(KvCacheShape::For(
                      slot->model->config, 32 * (DecodeContext() + 64),
                      kPageSize, slot->transformer->kv_dtype())))
            .value();
  }
  return *slot;
}

const char* kPresets[] = {"qwen3-tiny", "qwen3-0.6b"};

// `tokens` and `logit_rows` are per call; `seconds` is the mean per call.
void ReportThroughput(benchmark::State& state, const Bench& b, double tokens,
                      double logit_rows, int64_t context, double seconds) {
  const double tokens_per_s = tokens / seconds;
  const double gflops =
      ForwardFlops(b.model->config, tokens, logit_rows, context) / seconds /
      1e9;
  state.counters["tokens_per_s"] = tokens_per_s;
  state.counters["GFLOPs"] = gflops;
  state.counters["ratio_to_sgemm_peak"] =
      gflops / (SgemmPeakGflops() * b.mesh->size());
  if (state.range(3) == 2) {
    state.counters["ratio_to_bf16_peak"] =
        gflops / (Bf16DotPeakGflops() * b.mesh->size());
  }
  static const char* kVariants[] = {" f32 row-invariant", " f32 openblas",
                                    " bf16 row-invariant"};
  state.SetLabel(std::string(kPresets[state.range(0)]) +
                 kVariants[state.range(3)]);
}

void BM_Prefill(benchmark::State& state) {
  Bench& b = BenchFor(kPresets[state.range(0)],
                      static_cast<int>(state.range(2)), state.range(3));
  const int64_t batch = state.range(1);
  const ModelConfig& c = b.model->config;
  const int64_t pages_per_seq = (kPromptTokens + kPageSize - 1) / kPageSize;
  std::vector<std::vector<int32_t>> tokens(batch), pages(batch);
  std::vector<SequenceInput> inputs;
  for (int64_t s = 0; s < batch; ++s) {
    for (int64_t i = 0; i < kPromptTokens; ++i)
      tokens[s].push_back((s * 131 + i * 7) % c.vocab_size);
    for (int64_t p = 0; p < pages_per_seq; ++p)
      pages[s].push_back(s * pages_per_seq + p);
    inputs.push_back(SequenceInput{tokens[s], 0, pages[s], false});
  }
  std::vector<float> logits(batch * c.vocab_size);
  double timed = 0;
  for (auto _ : state) {
    const auto t0 = SteadyClock::now();
    CHECK(b.transformer->Forward(inputs, *b.cache, logits).ok());
    timed += SecondsBetween(t0, SteadyClock::now());
  }
  // Attention in prefill sees on average half the prompt.
  ReportThroughput(state, b, batch * kPromptTokens, batch, kPromptTokens / 2,
                   timed / state.iterations());
}

void BM_Decode(benchmark::State& state) {
  Bench& b = BenchFor(kPresets[state.range(0)],
                      static_cast<int>(state.range(2)), state.range(3));
  const int64_t batch = state.range(1);
  const ModelConfig& c = b.model->config;
  const int64_t context = DecodeContext();
  const int64_t pages_per_seq = (context + 64 + kPageSize - 1) / kPageSize;
  std::vector<std::vector<int32_t>> prompts(batch), pages(batch);
  std::vector<SequenceInput> inputs;
  for (int64_t s = 0; s < batch; ++s) {
    for (int64_t i = 0; i < context; ++i)
      prompts[s].push_back((s * 17 + i * 3) % c.vocab_size);
    for (int64_t p = 0; p < pages_per_seq; ++p)
      pages[s].push_back(s * pages_per_seq + p);
  }
  // Fill the cache with the contexts (untimed), one sequence at a time.
  std::vector<float> logits(batch * c.vocab_size);
  for (int64_t s = 0; s < batch; ++s) {
    SequenceInput in{prompts[s], 0, pages[s], false};
    CHECK(
        b.transformer
            ->Forward({&in, 1}, *b.cache, {logits.data(), size_t(c.vocab_size)})
            .ok());
  }
  std::vector<int32_t> next(batch, 1);
  // Every step decodes position `context` again: the context stays fixed.
  for (int64_t s = 0; s < batch; ++s) {
    inputs.push_back(SequenceInput{{&next[s], 1}, context, pages[s], false});
  }
  double timed = 0;
  for (auto _ : state) {
    const auto t0 = SteadyClock::now();
    CHECK(b.transformer->Forward(inputs, *b.cache, logits).ok());
    timed += SecondsBetween(t0, SteadyClock::now());
  }
  const double steps = static_cast<double>(state.iterations());
  ReportThroughput(state, b, batch, batch, context, timed / steps);
  if (batch == 1) {
    const double weight_bytes_per_s =
        b.model->weights.total_bytes() * steps / timed;
    state.counters["ratio_to_memcpy_bandwidth"] =
        weight_bytes_per_s / MemcpyBytesPerSecond();
    state.counters["ratio_to_read_bandwidth"] =
        weight_bytes_per_s / StreamReadBytesPerSecond(b.mesh->size());
    state.counters["weight_GB_per_s"] = weight_bytes_per_s / 1e9;
  }
}

void PrefillArgs(benchmark::internal::Benchmark* b) {
  for (int64_t model : {0, 1}) {
    for (int64_t batch : {1, 8, 32}) {
      for (int64_t devices : {1, 2}) {
        for (int64_t variant : {0, 1, 2}) {
          b->Args({model, batch, devices, variant});
        }
      }
    }
  }
  b->ArgNames({"model", "batch", "devices", "variant"})
      ->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_Prefill)->Apply(PrefillArgs)->MinTime(1.0);
BENCHMARK(BM_Decode)->Apply(PrefillArgs)->MinTime(1.0);

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
