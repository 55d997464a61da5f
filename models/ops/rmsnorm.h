// RMSNorm as Hugging Face Llama/Qwen compute it in float32:
//   y = x / sqrt(mean(x^2) + eps) * weight
// Shapes: x, y [rows, dim] (y may alias x), weight [dim]. Used for the
// layer norms (dim = hidden) and Qwen3's per-head q/k norms (rows = tokens x
// heads, dim = head_dim).
#ifndef RLRT_MODELS_OPS_RMSNORM_H_
#define RLRT_MODELS_OPS_RMSNORM_H_

#include <cstdint>

#include "partition/mesh.h"
#include "partition/util/status.h"

namespace rlrt {

// One row; the kernel shared by forward callers and tests.
void RmsNormRow(const float* x, const float* weight, float* y, int64_t dim,
                float eps);

Status RmsNormForward(const float* x, const float* weight, float* y,
                      int64_t rows, int64_t dim, float eps, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_RMSNORM_H_
