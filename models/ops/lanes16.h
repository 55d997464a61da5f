// Sixteen float lanes, the accumulator of every row-invariant GEMM here
// (models/ops/gemm.h, gemm_bf16.h). Internal to those kernels.
#ifndef RLRT_MODELS_OPS_LANES16_H_
#define RLRT_MODELS_OPS_LANES16_H_

#include <immintrin.h>

#include <cmath>
#include <cstring>

namespace rlrt::gemm_internal {
// Unnamed on purpose: each kernel file, and its scalar-only test build,
// gets its own copy, compiled for the instruction set of that file.
namespace {

// Each path computes exactly fma(x_l, w_l, acc_l) per lane and reduces in
// the same tree (l[i] += l[i + w] for w = 8, 4, 2, 1), so all paths give
// identical bits (tests build the kernels a second time with
// RLRT_GEMM_SCALAR_ONLY to check it).
#if defined(__AVX512F__) && !defined(RLRT_GEMM_SCALAR_ONLY)
struct Lanes {
  __m512 v;
  static Lanes Zero() { return {_mm512_setzero_ps()}; }
  static Lanes Load(const float* p) { return {_mm512_loadu_ps(p)}; }
  // Loads n < 16 floats, zeros in the other lanes.
  static Lanes LoadPartial(const float* p, int n) {
    return {_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p)};
  }
  void Fma(const Lanes& a, const Lanes& b) { v = _mm512_fmadd_ps(a.v, b.v, v); }
  void Store(float* out) const { _mm512_storeu_ps(out, v); }
  // The tree on a stored copy: GCC 12's extract and shuffle intrinsics
  // fill with an undefined vector that it reports as uninitialised once
  // inlined into the tiles. Once per output, so the cost is nothing.
  float Reduce() const {
    alignas(64) float l[16];
    _mm512_store_ps(l, v);
    for (int width = 8; width > 0; width /= 2) {
      for (int i = 0; i < width; ++i) l[i] += l[i + width];
    }
    return l[0];
  }
};
#elif defined(__AVX2__) && defined(__FMA__) && !defined(RLRT_GEMM_SCALAR_ONLY)
struct Lanes {
  __m256 lo, hi;
  static Lanes Zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static Lanes Load(const float* p) {
    return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
  }
  static Lanes LoadPartial(const float* p, int n) {
    alignas(32) float buf[16] = {};
    std::memcpy(buf, p, n * sizeof(float));
    return Load(buf);
  }
  void Fma(const Lanes& a, const Lanes& b) {
    lo = _mm256_fmadd_ps(a.lo, b.lo, lo);
    hi = _mm256_fmadd_ps(a.hi, b.hi, hi);
  }
  void Store(float* out) const {
    _mm256_storeu_ps(out, lo);
    _mm256_storeu_ps(out + 8, hi);
  }
  float Reduce() const {
    const __m256 a = _mm256_add_ps(lo, hi);  // l[i] + l[i + 8]
    const __m128 b =
        _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
  }
};
#else
struct Lanes {
  float v[16];
  static Lanes Zero() { return {}; }
  static Lanes Load(const float* p) {
    Lanes l;
    std::memcpy(l.v, p, sizeof(l.v));
    return l;
  }
  static Lanes LoadPartial(const float* p, int n) {
    Lanes l{};
    std::memcpy(l.v, p, n * sizeof(float));
    return l;
  }
  void Fma(const Lanes& a, const Lanes& b) {
    for (int i = 0; i < 16; ++i) v[i] = std::fma(a.v[i], b.v[i], v[i]);
  }
  void Store(float* out) const { std::memcpy(out, v, sizeof(v)); }
  float Reduce() const {
    float l[16];
    Store(l);
    for (int width = 8; width > 0; width /= 2) {
      for (int i = 0; i < width; ++i) l[i] += l[i + width];
    }
    return l[0];
  }
};
#endif

}  // namespace
}  // namespace rlrt::gemm_internal

#endif  // RLRT_MODELS_OPS_LANES16_H_
