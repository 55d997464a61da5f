// Linear layer y = x W^T (+ b), with W stored as Hugging Face stores it:
// [out_features, in_features], row-major.
//
// Shapes: x [T, K], W [N, K], b [N] or null, y [T, N] (row stride ldy >= N).
// The N output columns are split across the mesh's workers in blocks of 16;
// an output's K-reduction always happens within one worker, so results do
// not depend on the worker count.
//
// Two kernels:
//  - kRowInvariant (default): models/ops/gemm.h. A row's results do not
//    depend on the other rows, so decode, prefill, batched and training
//    forwards of the same tokens give the same bits: the sampler's logprobs
//    equal the trainer's exactly.
//  - kOpenBlas: single-threaded OpenBLAS sgemm per worker. Faster for large
//    row counts, but its rounding depends on the row count.
#ifndef RLRT_MODELS_OPS_LINEAR_H_
#define RLRT_MODELS_OPS_LINEAR_H_

#include <cstdint>

#include "partition/mesh.h"
#include "partition/util/status.h"

namespace rlrt {

enum class MatmulKernel { kRowInvariant, kOpenBlas };

struct LinearArgs {
  const float* x = nullptr;
  int64_t rows = 0;  // T
  int64_t in = 0;    // K
  const float* weight = nullptr;
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

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_LINEAR_H_
