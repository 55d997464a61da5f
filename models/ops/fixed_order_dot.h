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
  // The bound restates n < 16 for GCC's -Warray-bounds.
  std::memcpy(buf, p, (n < 16 ? n : 16) * sizeof(T));
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

// out[i] = sum over p < count of weights[p] * row(p)[i], for
// 16 * (kBlocks - 1) < n <= 16 * kBlocks,
// each element by fused multiply-adds in p order from zero (attention's
// probabilities times its values). The sums stay in registers.
template <int kBlocks, typename RowAt>
void WeightedRowSumBlocks(const float* weights, RowAt row, int64_t count,
                          int64_t n, float* out) {
  Lanes acc[kBlocks];
  for (int b = 0; b < kBlocks; ++b) acc[b] = Lanes::Zero();
  const int64_t full = n / 16;  // Blocks of 16; a last partial one if n % 16.
  for (int64_t p = 0; p < count; ++p) {
    const Lanes w = Lanes::Splat(weights[p]);
    const auto* r = row(p);
    for (int b = 0; b < kBlocks; ++b) {
      acc[b].Fma(w, b < full ? LoadLanes(r + 16 * b)
                             : LoadLanesPartial(r + 16 * b, n - 16 * b));
    }
  }
  for (int b = 0; b < kBlocks; ++b) {
    if (b < full) {
      acc[b].Store(out + 16 * b);
    } else {
      float tail[16];
      acc[b].Store(tail);
      const int64_t rest = n - 16 * b;
      std::memcpy(out + 16 * b, tail, (rest < 16 ? rest : 16) * sizeof(float));
    }
  }
}

// The same for any n, 128 elements per pass.
template <typename RowAt>
void WeightedRowSum(const float* weights, RowAt row, int64_t count, int64_t n,
                    float* out) {
  for (int64_t c = 0; c < n; c += 128) {
    const int64_t width = n - c < 128 ? n - c : 128;
    auto at = [&](int64_t p) { return row(p) + c; };
    switch ((width + 15) / 16) {
      case 1:
        WeightedRowSumBlocks<1>(weights, at, count, width, out + c);
        break;
      case 2:
        WeightedRowSumBlocks<2>(weights, at, count, width, out + c);
        break;
      case 3:
        WeightedRowSumBlocks<3>(weights, at, count, width, out + c);
        break;
      case 4:
        WeightedRowSumBlocks<4>(weights, at, count, width, out + c);
        break;
      case 5:
        WeightedRowSumBlocks<5>(weights, at, count, width, out + c);
        break;
      case 6:
        WeightedRowSumBlocks<6>(weights, at, count, width, out + c);
        break;
      case 7:
        WeightedRowSumBlocks<7>(weights, at, count, width, out + c);
        break;
      default:
        WeightedRowSumBlocks<8>(weights, at, count, width, out + c);
    }
  }
}

}  // namespace
}  // namespace rlrt::gemm_internal

#endif  // RLRT_MODELS_OPS_FIXED_ORDER_DOT_H_
