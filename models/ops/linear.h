// Linear layer y = x W^T (+ b), with W stored as Hugging Face stores it:
// [out_features, in_features], row-major.
//
// Shapes: x [T, K], W [N, K], b [N] or null, y [T, N] (row stride ldy >= N).
// The N output columns are split across the mesh's workers in blocks of 16.
// With more than kSkinnyRows rows each worker calls single-threaded OpenBLAS
// sgemm on its block. With few rows (decode) sgemm would spend its time
// packing the weight panel, so a streaming kernel reads each weight row
// exactly once instead; that kernel's per-row results do not depend on the
// number of rows. Either way an output element's K-reduction happens inside
// one worker, so results do not depend on the worker count.
#ifndef RLRT_MODELS_OPS_LINEAR_H_
#define RLRT_MODELS_OPS_LINEAR_H_

#include <cstdint>

#include "partition/mesh.h"
#include "partition/util/status.h"

namespace rlrt {

inline constexpr int64_t kSkinnyRows = 8;

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
};

// Runs on `mesh` (inline when null).
Status LinearForward(const LinearArgs& args, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_LINEAR_H_
