// exp for softmax-style sums, as plain arithmetic the compiler vectorises.
//
// Softmax, log-softmax and sampling all need exp(z - max) over a whole
// vocabulary (150k entries per token); scalar library exp makes that the
// most expensive part of a decode step for small models. ExpNonPositive
// reduces x = n ln2 + r, |r| <= ln2/2, and evaluates e^r with a degree-7
// Taylor polynomial (truncation error < 6e-9 relative, below float's
// rounding), then scales by 2^n. Results flush to 0 below -87. Every caller
// (sampler and trainer alike) uses these same functions, so they agree bit
// for bit.
#ifndef RLRT_MODELS_OPS_FAST_EXP_H_
#define RLRT_MODELS_OPS_FAST_EXP_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace rlrt {

// exp(x) for x <= 0 (larger x is clamped to 0, giving 1; NaN gives NaN).
inline float ExpNonPositive(float x) {
  // NaN takes the x = 0 path and is put back at the end: converting a NaN
  // n to an integer would be undefined behaviour.
  const bool not_a_number = x != x;
  x = (x > 0.0f || not_a_number) ? 0.0f : x;
  const bool underflow = x < -87.0f;
  x = underflow ? -87.0f : x;
  // n = round(x / ln2) by the add-and-subtract trick (exact for |n| < 2^22).
  const float shifter = 12582912.0f;  // 1.5 * 2^23
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  // r = x - n ln2, with ln2 split so n * ln2_hi is exact. Explicit fused
  // multiply-adds define the rounding, rather than leaving each call site
  // to the compiler's contraction choices.
  const float r = std::fma(-n, -2.12194440e-4f, std::fma(-n, 0.693359375f, x));
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return not_a_number ? std::numeric_limits<float>::quiet_NaN()
         : underflow  ? 0.0f
                      : p * scale;
}

// Adds values[i] into lanes[i % 8] in index order: the fixed summation
// order every softmax-style sum here uses (vectorised as eight lanes).
inline void AddToLanes(double lanes[8], const float* values, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) lanes[l] += values[i + l];
  }
  for (; i < n; ++i) lanes[i & 7] += values[i];
}

// The lanes folded in a fixed tree.
inline double FoldLanes(const double lanes[8]) {
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
         ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// max_i values[i] * scale (-inf for n = 0). A max is exact in any order, so
// sixteen lanes let the compiler vectorise it.
float ScaledMax(const float* values, int64_t n, float scale);

// sum_i exp(scale * values[i] - shift) over a contiguous array, accumulated
// in double in eight lanes (a fixed order, so the result is reproducible).
// When `out` is not null it receives each term.
double ExpShiftedSum(const float* values, int64_t n, float scale, float shift,
                     float* out = nullptr);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_FAST_EXP_H_
