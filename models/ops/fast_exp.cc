#include "models/ops/fast_exp.h"

#include <cmath>

namespace rlrt {

float ScaledMax(const float* values, int64_t n, float scale) {
  float lanes[16];
  for (float& l : lanes) l = -INFINITY;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) {
      const float v = values[i + l] * scale;
      lanes[l] = v > lanes[l] ? v : lanes[l];
    }
  }
  for (int l = 0; i < n; ++i, ++l) {
    const float v = values[i] * scale;
    lanes[l] = v > lanes[l] ? v : lanes[l];
  }
  float m = lanes[0];
  for (int l = 1; l < 16; ++l) m = lanes[l] > m ? lanes[l] : m;
  return m;
}

double ExpShiftedSum(const float* values, int64_t n, float scale, float shift,
                     float* out) {
  double lanes[8] = {};
  constexpr int64_t kBlock = 256;
  float terms[kBlock];
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t m = n - start < kBlock ? n - start : kBlock;
    // Vectorised: no calls, no branches that escape the loop.
    for (int64_t i = 0; i < m; ++i) {
      terms[i] = ExpNonPositive(values[start + i] * scale - shift);
    }
    if (out != nullptr) std::memcpy(out + start, terms, m * sizeof(float));
    // start is a multiple of 8, so lane l keeps taking indices = l (mod 8).
    AddToLanes(lanes, terms, m);
  }
  return FoldLanes(lanes);
}

}  // namespace rlrt
