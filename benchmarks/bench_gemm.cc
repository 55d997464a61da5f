// bench_gemm: the row-invariant matmul kernels alone, on the projection
// shapes of Qwen3-0.6B (hidden 1024, q/o 2048, k/v 1024, MLP 3072), one
// core, for 1 row (decode), 32 rows (a decode batch) and 256 rows (prefill).
// Counters: GFLOPs; for float32, ratio_to_sgemm_peak (OpenBLAS sgemm on one
// core, measured in this run); for BF16, ratio_to_bf16_peak (a vdpbf16ps
// loop on one core, measured in this run) and ratio_to_sgemm_peak, so the
// two dtypes compare on one scale. BM_LinearBackwardBf16: the backward
// products of a BF16-weight linear layer on the trainer's shapes. Quote medians
// of repetitions:
// --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "benchmarks/bench_limits.h"
#include "models/dtype.h"
#include "models/ops/gemm.h"
#include "models/ops/gemm_bf16.h"
#include "models/ops/linear.h"

namespace rlrt {
namespace {

struct Shape {
  int64_t k, n;
};
// (in, out) of q_proj, o_proj and up_proj of Qwen3-0.6B.
constexpr Shape kShapes[] = {{1024, 2048}, {2048, 1024}, {1024, 3072}};

void Report(benchmark::State& state, double flops_per_call, bool bf16) {
  const double gflops = flops_per_call * state.iterations() / 1e9;
  state.counters["GFLOPs"] =
      benchmark::Counter(gflops, benchmark::Counter::kIsRate);
  state.counters["ratio_to_sgemm_peak"] = benchmark::Counter(
      gflops / SgemmPeakGflops(), benchmark::Counter::kIsRate);
  if (bf16 && Bf16DotPeakGflops() > 0)
    state.counters["ratio_to_bf16_peak"] = benchmark::Counter(
        gflops / Bf16DotPeakGflops(), benchmark::Counter::kIsRate);
}

void BM_GemmF32(benchmark::State& state) {
  const int64_t rows = state.range(0);
  const Shape shape = kShapes[state.range(1)];
  std::vector<float> x(rows * shape.k, 0.5f), w(shape.n * shape.k, 0.25f),
      y(rows * shape.n);
  SgemmPeakGflops();  // Measured before the timed loop.
  for (auto _ : state) {
    RowInvariantGemm(
        {x.data(), rows, shape.k, w.data(), nullptr, y.data(), shape.n, false},
        0, shape.n);
    benchmark::DoNotOptimize(y.data());
  }
  Report(state, 2.0 * rows * shape.k * shape.n, false);
}

void BM_GemmBf16(benchmark::State& state) {
  const int64_t rows = state.range(0);
  const Shape shape = kShapes[state.range(1)];
  std::vector<uint16_t> x(rows * shape.k, F32ToBf16(0.5f)),
      w(shape.n * shape.k, F32ToBf16(0.25f));
  std::vector<float> y(rows * shape.n);
  SgemmPeakGflops();
  Bf16DotPeakGflops();
  for (auto _ : state) {
    RowInvariantGemmBf16(
        {x.data(), rows, shape.k, w.data(), nullptr, y.data(), shape.n, false},
        0, shape.n);
    benchmark::DoNotOptimize(y.data());
  }
  Report(state, 2.0 * rows * shape.k * shape.n, true);
  state.SetLabel(Bf16GemmPath());
}

// LinearBackward (dX and dW) of BF16 weights, one core, on the trainer's
// shapes (bench_trainer's ~100M Qwen3: hidden 512, MLP 1536, vocabulary
// 151,936): shape 0 an MLP up-projection over 1024 tokens, shape 1 the LM
// head over a chunk of `rows` targets. products: 1 BF16 (the default),
// 0 float32 (W widened).
void BM_LinearBackwardBf16(benchmark::State& state) {
  const bool head = state.range(0) == 1;
  const int64_t rows = head ? state.range(2) : 1024;
  const int64_t in = 512, out = head ? 151936 : 1536;
  std::vector<float> x(rows * in, 0.5f), dy(rows * out, 0.125f), dx(rows * in),
      dw(out * in, 0.0f);
  std::vector<uint16_t> w(out * in, F32ToBf16(0.25f));
  SgemmPeakGflops();
  Bf16DotPeakGflops();
  for (auto _ : state) {
    const Status s = LinearBackward({.x = x.data(),
                                     .weight = MatrixRef::Bf16(w.data()),
                                     .dy = dy.data(),
                                     .rows = rows,
                                     .in = in,
                                     .out = out,
                                     .dx = dx.data(),
                                     .dweight = dw.data(),
                                     .bf16_products = state.range(1) == 1},
                                    nullptr);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(dw.data());
  }
  Report(state, 4.0 * rows * in * out, state.range(1) == 1);
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int64_t rows : {1, 32, 256})
    for (int64_t shape = 0; shape < 3; ++shape) b->Args({rows, shape});
  b->ArgNames({"rows", "shape"})->UseRealTime();
}

BENCHMARK(BM_GemmF32)->Apply(Shapes);
BENCHMARK(BM_GemmBf16)->Apply(Shapes);
BENCHMARK(BM_LinearBackwardBf16)
    ->Args({0, 1, 1024})
    ->Args({0, 0, 1024})
    ->Args({1, 1, 64})
    ->Args({1, 1, 256})
    ->Args({1, 0, 64})
    ->ArgNames({"head", "products", "rows"})
    ->UseRealTime();

}  // namespace
}  // namespace rlrt

BENCHMARK_MAIN();
