// Linear layer y = x W^T (+ b), with W stored as Hugging Face stores it:
// [out_features, in_features], row-major.
//
// Shapes: x [T, K], W [N, K], b [N] or null, y [T, N] (row stride ldy >= N).
// The N output columns are split across the mesh's workers in blocks of 16;
// an output's K-reduction always happens within one worker, so results do
// not depend on the worker count.
//
// Weights may be float32 or BF16 (MatrixRef). With BF16 weights the input
// rows are rounded to BF16 (nearest even) in LinearForward, which is the
// one place in the decoder where activations lose precision; the product
// runs in models/ops/gemm_bf16.h with float32 accumulation and a float32
// output, and everything outside the matmuls stays float32. The backward
// treats the rounding as the identity for dX (the straight-through rule
// PyTorch's autocast applies too) and forms dW from the rounded rows, which
// is what the forward multiplied.
//
// Two kernels:
//  - kRowInvariant (default): models/ops/gemm.h. A row's results do not
//    depend on the other rows, so decode, prefill, batched and training
//    forwards of the same tokens give the same bits: the sampler's logprobs
//    equal the trainer's exactly.
//  - kOpenBlas: single-threaded OpenBLAS sgemm per worker. Faster for large
//    row counts, but its rounding depends on the row count. Float32 only.
//
// Backward (LinearBackward): dX = dY W, dW += dY^T X, db += column sums of dY,
// with models/ops/gemm_accumulate.h (or its BF16 twin,
// gemm_accumulate_bf16.h, for BF16 weights unless bf16_products is off),
// whose per-output summation order is fixed. dX is split across workers by
// blocks of input columns and dW (with db) by blocks of output rows, so no two
// workers write the same memory and the bits do not depend on the worker count.
// (OpenBLAS sgemm per worker would not promise that: its kernel choice, and so
// its rounding, changes with the shape of each worker's block.)
#ifndef RLRT_MODELS_OPS_LINEAR_H_
#define RLRT_MODELS_OPS_LINEAR_H_

#include <cstdint>

#include "base/status.h"
#include "models/ops/matrix_ref.h"
#include "partition/mesh.h"

namespace rlrt {

enum class MatmulKernel { kRowInvariant, kOpenBlas };

struct LinearArgs {
  const float* x = nullptr;
  int64_t rows = 0;             // T
  int64_t in = 0;               // K
  MatrixRef weight;             // [out, in]
  const float* bias = nullptr;  // Optional.
  int64_t out = 0;              // N
  float* y = nullptr;
  int64_t ldy = 0;  // 0 means N.
  // y += x W^T (+ b) instead of y = ...; fuses residual connections.
  bool accumulate = false;
  MatmulKernel kernel = MatmulKernel::kRowInvariant;
};

// Runs on `mesh` (inline when null).
Status LinearForward(const LinearArgs& args, Mesh* mesh);

struct LinearBackwardArgs {
  const float* x = nullptr;   // [rows, in], the forward's input.
  MatrixRef weight;           // [out, in], as in the forward.
  const float* dy = nullptr;  // [rows, out], dLoss/dy.
  int64_t rows = 0;           // T
  int64_t in = 0;             // K
  int64_t out = 0;            // N
  // [rows, in] or null: dx = dy W, or dx += dy W with accumulate_dx (which
  // fuses residual branches). Must not overlap x or dy.
  float* dx = nullptr;
  bool accumulate_dx = false;
  // [out, in] float32 or null: dweight += dy^T x (x rounded to BF16 first
  // when the weight is BF16).
  float* dweight = nullptr;
  float* dbias = nullptr;  // [out] or null: dbias += sum over rows of dy.
  // BF16 weights only (ignored for float32 ones). true: both products run
  // in BF16 with float32 accumulation, as PyTorch's autocast runs them: dy
  // is rounded to BF16 once, then dX = dy W and dW += dy^T x (x rounded as
  // the forward rounded it) in models/ops/gemm_accumulate_bf16.h. false:
  // float32 products of dy as is and W widened exactly. dbias is summed
  // from dy as is either way.
  bool bf16_products = true;
};

// Runs on `mesh` (inline when null).
Status LinearBackward(const LinearBackwardArgs& args, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_LINEAR_H_
