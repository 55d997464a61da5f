#include "models/ops/rope.h"

#include <cmath>

#include "partition/parallel.h"

namespace rlrt {

std::vector<double> RopeInverseFrequencies(int64_t head_dim, double theta) {
  std::vector<double> inv_freq(head_dim / 2);
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    inv_freq[i] = std::pow(
        theta, -static_cast<double>(2 * i) / static_cast<double>(head_dim));
  }
  return inv_freq;
}

void RopeTables(const int32_t* positions, int64_t rows,
                const std::vector<double>& inv_freq, float* cos_out,
                float* sin_out) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(positions[r]) * inv_freq[i];
      cos_out[r * half + i] = static_cast<float>(std::cos(angle));
      sin_out[r * half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

namespace {

// Rotates every head of every row by its table angle, or by minus it.
template <bool kInverse>
Status Rotate(float* x, int64_t rows, int64_t heads, int64_t head_dim,
              const float* cos_table, const float* sin_table, Mesh* mesh) {
  const int64_t half = head_dim / 2;
  return ParallelForOrInline(mesh, rows * heads, [&](const Shard& s) {
    for (int64_t item = s.begin; item < s.end; ++item) {
      const int64_t r = item / heads;
      float* v = x + item * head_dim;
      const float* c = cos_table + r * half;
      const float* sn = sin_table + r * half;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i];
        const float b = v[i + half];
        if constexpr (kInverse) {
          v[i] = a * c[i] + b * sn[i];
          v[i + half] = b * c[i] - a * sn[i];
        } else {
          v[i] = a * c[i] - b * sn[i];
          v[i + half] = b * c[i] + a * sn[i];
        }
      }
    }
    return OkStatus();
  });
}

}  // namespace

Status RopeForward(float* x, int64_t rows, int64_t heads, int64_t head_dim,
                   const float* cos_table, const float* sin_table, Mesh* mesh) {
  return Rotate<false>(x, rows, heads, head_dim, cos_table, sin_table, mesh);
}

Status RopeBackward(float* dy, int64_t rows, int64_t heads, int64_t head_dim,
                    const float* cos_table, const float* sin_table,
                    Mesh* mesh) {
  return Rotate<true>(dy, rows, heads, head_dim, cos_table, sin_table, mesh);
}

}  // namespace rlrt
