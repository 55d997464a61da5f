// Row-invariant matrix product of bfloat16 operands with float32 results:
// y[m, n] = sum_k x[m, k] * w[n, k], x and w holding BF16 bit patterns.
//
// The promise of models/ops/gemm.h holds here too: every output's bits
// depend only on its row of x, its row of w and K, never on the batch it is
// computed in or on the worker that computes it. The K-reduction runs in 16
// float lanes; lane l takes the pairs (32j + 2l, 32j + 2l + 1) for j in
// order, adding the odd element's product and then the even one's, each
// product exact (8-bit significands) and each sum rounded to nearest even.
// That is what AVX-512 BF16's vdpbf16ps does per lane, and the portable
// paths (AVX-512F, AVX2, scalar) do exactly the same with fused
// multiply-adds, so every path gives the same bits (tested). The lanes are
// folded in gemm.h's fixed tree.
//
// Subnormal numbers: vdpbf16ps treats subnormal inputs as zero and flushes
// subnormal results; the portable paths do not. The paths can therefore
// differ only where a weight, activation or partial sum lies below 2^-126,
// which a model's values never approach. Within one machine the same path
// is always used, so the sampler and the trainer agree bit for bit either
// way.
#ifndef RLRT_MODELS_OPS_GEMM_BF16_H_
#define RLRT_MODELS_OPS_GEMM_BF16_H_

#include <cstdint>

namespace rlrt {

struct GemmBf16Args {
  const uint16_t* x = nullptr;  // [rows, k] BF16, row stride k.
  int64_t rows = 0;
  int64_t k = 0;
  const uint16_t* w = nullptr;  // [n, k] BF16, row stride k.
  const float* bias = nullptr;  // [n] or null; added after the reduction.
  float* y = nullptr;           // [rows, ldy]
  int64_t ldy = 0;
  bool accumulate = false;  // y += product (+ bias) instead of y = ...
};

// Computes output columns [n_begin, n_end) on the calling thread.
void RowInvariantGemmBf16(const GemmBf16Args& args, int64_t n_begin,
                          int64_t n_end);

// Which instructions RowInvariantGemmBf16 uses on this build: "avx512_bf16",
// "avx512f", "avx2" or "scalar" (for benchmark reports).
const char* Bf16GemmPath();

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_GEMM_BF16_H_
