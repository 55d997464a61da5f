// Row-invariant matrix product: y[m, n] = sum_k x[m, k] * w[n, k].
//
// Every output is computed the same way whatever else is in the call: its
// K-reduction runs in 16 lanes (lane l takes k = l, l + 16, ...) with fused
// multiply-adds in k order, then the lanes are summed in a fixed tree. So a
// row's results are bit-identical whether it is computed alone, inside a
// decode batch, or inside a whole training sequence; this is what lets the
// sampler and the trainer agree bit for bit (OpenBLAS's sgemm does not: its
// kernels for different row counts round differently). The AVX-512, AVX2 and
// scalar paths perform the same operations, so they agree too.
//
// Cost model: outputs are built 8 rows x 2 columns at a time in registers;
// rows are processed in blocks small enough to stay in L2 while each block
// streams its columns of W once.
#ifndef RLRT_MODELS_OPS_GEMM_H_
#define RLRT_MODELS_OPS_GEMM_H_

#include <cstdint>

namespace rlrt {

struct GemmArgs {
  const float* x = nullptr;  // [rows, k], row stride k.
  int64_t rows = 0;
  int64_t k = 0;
  const float* w = nullptr;     // [n, k], row stride k.
  const float* bias = nullptr;  // [n] or null; added after the reduction.
  float* y = nullptr;           // [rows, ldy]
  int64_t ldy = 0;
  bool accumulate = false;  // y += product (+ bias) instead of y = ...
};

// Computes output columns [n_begin, n_end) on the calling thread.
void RowInvariantGemm(const GemmArgs& args, int64_t n_begin, int64_t n_end);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_GEMM_H_
