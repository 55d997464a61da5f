#include "models/ops/rmsnorm.h"

#include <cmath>

#include "models/parallel.h"

namespace rlrt {

void RmsNormRow(const float* x, const float* weight, float* y, int64_t dim,
                float eps) {
  // Accumulate in double: the mean of squares is the one reduction here and
  // double makes it independent of vectorisation width.
  double sum_sq = 0;
  for (int64_t i = 0; i < dim; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float inv_rms =
      static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(dim) +
                                         static_cast<double>(eps)));
  for (int64_t i = 0; i < dim; ++i) y[i] = weight[i] * (x[i] * inv_rms);
}

Status RmsNormForward(const float* x, const float* weight, float* y,
                      int64_t rows, int64_t dim, float eps, Mesh* mesh) {
  return ParallelForOrInline(mesh, rows, [&](const Shard& s) {
    for (int64_t r = s.begin; r < s.end; ++r) {
      RmsNormRow(x + r * dim, weight, y + r * dim, dim, eps);
    }
    return OkStatus();
  });
}

}  // namespace rlrt
