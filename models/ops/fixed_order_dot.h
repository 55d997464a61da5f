// Dot products of one float vector with several others (float32 or BF16),
// each in one fixed order whatever the compiler, the instruction set or
// how many are computed together: lane l of sixteen takes the elements
// i = l (mod 16) in order with fused multiply-adds, and the lanes are
// folded in the tree of lanes16.h. Attention's scores use it, so the
// sampler's forward, the trainer's forward and the backward's recomputed
// scores agree bit for bit. Internal to the kernels of models/ops.
#ifndef RLRT_MODELS_OPS_FIXED_ORDER_DOT_H_
#define RLRT_MODELS_OPS_FIXED_ORDER_DOT_H_

#include <cstdint>
#include <cstring>

#include "models/ops/lanes16.h"

namespace rlrt::gemm_internal {
namespace {

inline Lanes LoadLanes(const float* p) { return Lanes::Load(p); }
inline Lanes LoadLanes(const uint16_t* p) { return Lanes::LoadBf16(p); }

// n < 16 elements, zeros after them (fma(0, 0, acc) leaves acc's value).
template <typename T>
Lanes LoadLanesPartial(const T* p, int64_t n) {
  T buf[16] = {};
  std::memcpy(buf, p, n * sizeof(T));
  return LoadLanes(buf);
}

// out[j] = a . b[j] over n elements for j < N. N independent sums keep the
// multiply-add latency hidden; the bits of each do not depend on N.
template <int N, typename T>
void FixedOrderDots(const float* a, const T* const* b, int64_t n, float* out) {
  Lanes acc[N];
  for (int j = 0; j < N; ++j) acc[j] = Lanes::Zero();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const Lanes x = Lanes::Load(a + i);
    for (int j = 0; j < N; ++j) acc[j].Fma(x, LoadLanes(b[j] + i));
  }
  if (i < n) {
    const Lanes x = Lanes::LoadPartial(a + i, static_cast<int>(n - i));
    for (int j = 0; j < N; ++j)
      acc[j].Fma(x, LoadLanesPartial(b[j] + i, n - i));
  }
  ReduceMany(acc, N, out);
}

template <typename T>
float FixedOrderDot(const float* a, const T* b, int64_t n) {
  float out;
  FixedOrderDots<1>(a, &b, n, &out);
  return out;
}

}  // namespace
}  // namespace rlrt::gemm_internal

#endif  // RLRT_MODELS_OPS_FIXED_ORDER_DOT_H_
