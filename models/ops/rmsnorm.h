// RMSNorm as Hugging Face Llama/Qwen compute it in float32, and its gradient:
//   y = x / sqrt(mean(x^2) + eps) * weight
// Shapes: x, y [rows, dim] (y may alias x), weight [dim]. Used for the
// layer norms (dim = hidden) and Qwen3's per-head q/k norms (rows = tokens x
// heads, dim = head_dim).
//
// Backward, with r = 1 / sqrt(mean(x^2) + eps) per row:
//   dx_j = r * weight_j * dy_j - (r^3 / dim) * x_j * sum_i weight_i dy_i x_i
//   dweight_j += sum over rows of dy_j * x_j * r
#ifndef RLRT_MODELS_OPS_RMSNORM_H_
#define RLRT_MODELS_OPS_RMSNORM_H_

#include <cstdint>

#include "base/status.h"
#include "partition/mesh.h"

namespace rlrt {

// One row; the kernel shared by forward callers and tests.
void RmsNormRow(const float* x, const float* weight, float* y, int64_t dim,
                float eps);

Status RmsNormForward(const float* x, const float* weight, float* y,
                      int64_t rows, int64_t dim, float eps, Mesh* mesh);

struct RmsNormBackwardArgs {
  const float* x = nullptr;       // [rows, dim], the forward's input.
  const float* weight = nullptr;  // [dim]
  const float* dy = nullptr;      // [rows, dim]
  // [rows, dim]: dx = ..., or dx += ... with accumulate_dx (a residual
  // branch). May alias dy (not with accumulate_dx), not x.
  float* dx = nullptr;
  bool accumulate_dx = false;
  float* dweight = nullptr;  // [dim] or null: dweight += ...
  // [rows] scratch for r per row, kept in double between the passes.
  double* inv_rms = nullptr;
  int64_t rows = 0;
  int64_t dim = 0;
  float eps = 0;
};

// Three passes over the mesh: r per row; dweight split by columns (each
// column's sum over rows runs in row order in double, within one worker:
// the same bits for any worker count, and accurate over thousands of rows);
// then dx per row, with the row's reductions in double as in the forward.
// dweight is done before dx, so dx may overwrite dy.
Status RmsNormBackward(const RmsNormBackwardArgs& args, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_RMSNORM_H_
