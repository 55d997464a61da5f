// Random inputs and comparisons for the op tests.
#ifndef RLRT_MODELS_OPS_OP_TEST_UTIL_H_
#define RLRT_MODELS_OPS_OP_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "models/test_util.h"
#include "partition/mesh.h"

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

inline std::vector<double> ToDouble(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Central differences of a double-precision function at x:
// grad[i] = (f(x + h e_i) - f(x - h e_i)) / 2h. With a naive double
// reference for f this is an independent gradient, accurate to ~1e-9.
inline std::vector<double> NumericalGradient(
    const std::function<double(const std::vector<double>&)>& f,
    std::vector<double> x, double h = 1e-5) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = f(x);
    x[i] = saved - h;
    const double down = f(x);
    x[i] = saved;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

// sum_i weights[i] * y[i]: a scalar loss whose gradient with respect to y is
// `weights`, to test backward passes with.
inline double Project(const std::vector<double>& y,
                      const std::vector<float>& weights) {
  double sum = 0;
  for (size_t i = 0; i < y.size(); ++i) sum += y[i] * weights[i];
  return sum;
}

// max |got - want| / max |want|: the error relative to the tensor's scale.
inline double MaxRelativeError(const std::vector<float>& got,
                               const std::vector<double>& want) {
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  return MaxAbsDiff(got.data(), want.data(), got.size()) /
         std::max(scale, 1e-30);
}

inline bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Runs fn(mesh) with no mesh and with meshes of 1, 2 and 3 workers and
// checks that every run returns the same bits.
inline void ExpectSameBitsForAnyWorkerCount(
    const std::function<std::vector<float>(Mesh*)>& fn) {
  const std::vector<float> inline_result = fn(nullptr);
  for (int workers : {1, 2, 3}) {
    auto mesh = MakeMesh(workers);
    EXPECT_TRUE(SameBits(fn(mesh.get()), inline_result))
        << workers << " workers";
  }
}

}  // namespace rlrt::testing

#endif  // RLRT_MODELS_OPS_OP_TEST_UTIL_H_
