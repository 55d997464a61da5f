#include "models/ops/rmsnorm.h"

#include <algorithm>
#include <cmath>

#include "models/ops/column_sums.h"
#include "partition/parallel.h"

namespace rlrt {
namespace {

// Accumulate in double: the mean of squares is the one reduction here and
// double makes it independent of vectorisation width.
double MeanSquare(const float* x, int64_t dim) {
  double sum_sq = 0;
  for (int64_t i = 0; i < dim; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  return sum_sq / static_cast<double>(dim);
}

void InputGradientRow(const RmsNormBackwardArgs& a, int64_t r) {
  const float* x = a.x + r * a.dim;
  const float* dy = a.dy + r * a.dim;
  float* dx = a.dx + r * a.dim;
  const double inv = a.inv_rms[r];
  double dot = 0;  // sum_i weight_i dy_i x_i
  for (int64_t i = 0; i < a.dim; ++i)
    dot += static_cast<double>(a.weight[i]) * dy[i] * x[i];
  const double coef = inv * inv * inv * dot / static_cast<double>(a.dim);
  for (int64_t i = 0; i < a.dim; ++i) {
    const double g = inv * a.weight[i] * dy[i] - coef * x[i];
    dx[i] = static_cast<float>(a.accumulate_dx ? dx[i] + g : g);
  }
}

}  // namespace

void RmsNormRow(const float* x, const float* weight, float* y, int64_t dim,
                float eps) {
  const float inv_rms = static_cast<float>(
      1.0 / std::sqrt(MeanSquare(x, dim) + static_cast<double>(eps)));
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

Status RmsNormBackward(const RmsNormBackwardArgs& a, Mesh* mesh) {
  if (a.rows <= 0 || a.dim <= 0) return OkStatus();
  if (a.accumulate_dx && a.dx == a.dy) {
    return InvalidArgumentError(
        "rmsnorm backward: an accumulated dx cannot alias dy");
  }
  RETURN_IF_ERROR(ParallelForOrInline(mesh, a.rows, [&](const Shard& s) {
    for (int64_t r = s.begin; r < s.end; ++r) {
      a.inv_rms[r] = 1.0 / std::sqrt(MeanSquare(a.x + r * a.dim, a.dim) +
                                     static_cast<double>(a.eps));
    }
    return OkStatus();
  }));
  if (a.dweight != nullptr) {
    constexpr int64_t kBlock = 16;
    RETURN_IF_ERROR(ParallelForOrInline(
        mesh, (a.dim + kBlock - 1) / kBlock, [&](const Shard& s) {
          // dweight[c] += sum_r dy[r, c] * x[r, c] * r_r
          AddColumnSums(
              a.rows, s.begin * kBlock, std::min(a.dim, s.end * kBlock),
              [&](int64_t r, int64_t c) {
                const int64_t at = r * a.dim + c;
                return static_cast<double>(a.dy[at]) * a.x[at] * a.inv_rms[r];
              },
              a.dweight);
          return OkStatus();
        }));
  }
  if (a.dx == nullptr) return OkStatus();
  return ParallelForOrInline(mesh, a.rows, [&](const Shard& s) {
    for (int64_t r = s.begin; r < s.end; ++r) InputGradientRow(a, r);
    return OkStatus();
  });
}

}  // namespace rlrt
