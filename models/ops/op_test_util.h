// Random inputs and comparisons for the op tests.
#ifndef RLRT_MODELS_OPS_OP_TEST_UTIL_H_
#define RLRT_MODELS_OPS_OP_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace rlrt::testing {

inline std::vector<float> RandomVector(size_t n, uint32_t seed,
                                       float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Max |a - b| over the arrays.
inline double MaxAbsDiff(const float* a, const double* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace rlrt::testing

#endif  // RLRT_MODELS_OPS_OP_TEST_UTIL_H_
