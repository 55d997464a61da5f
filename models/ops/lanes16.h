// Sixteen float lanes, the accumulator of every row-invariant GEMM here
// (models/ops/gemm.h, gemm_bf16.h). Internal to those kernels.
#ifndef RLRT_MODELS_OPS_LANES16_H_
#define RLRT_MODELS_OPS_LANES16_H_

#include <immintrin.h>

#include <cmath>
#include <cstdint>
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
  static Lanes Splat(float x) { return {_mm512_set1_ps(x)}; }
  static Lanes Load(const float* p) { return {_mm512_loadu_ps(p)}; }
  // Loads n < 16 floats, zeros in the other lanes.
  static Lanes LoadPartial(const float* p, int n) {
    return {_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p)};
  }
  // Sixteen BF16 values, widened exactly.
  static Lanes LoadBf16(const uint16_t* p) {
    const __m512i wide = _mm512_maskz_cvtepu16_epi32(
        0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return {_mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, wide, 16))};
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

// out[i] = acc[i].Reduce() for i < n, four sums at a time in vector
// registers: every addition pairs the same two partial sums as Reduce's
// tree (and a + b == b + a exactly), so the bits are Reduce's. The scalar
// tree costs about as much as 8 steps of a K = 1024 tile per output.
inline void ReduceMany(const Lanes* acc, int n, float* out) {
  // The zero-masking forms, as in Reduce: the plain shuffles' undefined
  // filler trips GCC 12's uninitialised-value warning.
  constexpr __mmask16 kAll = 0xffff;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m512 a = acc[i].v, b = acc[i + 1].v;
    const __m512 c = acc[i + 2].v, d = acc[i + 3].v;
    // Width 8: 128-bit blocks (a0 a1 b0 b1) + (a2 a3 b2 b3).
    const __m512 ab =
        _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, a, b, 0x44),
                      _mm512_maskz_shuffle_f32x4(kAll, a, b, 0xee));
    const __m512 cd =
        _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, c, d, 0x44),
                      _mm512_maskz_shuffle_f32x4(kAll, c, d, 0xee));
    // Width 4: blocks (ab0 ab2 cd0 cd2) + (ab1 ab3 cd1 cd3), one block
    // per accumulator from here on.
    const __m512 w4 =
        _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, ab, cd, 0x88),
                      _mm512_maskz_shuffle_f32x4(kAll, ab, cd, 0xdd));
    // Width 2 and 1 within each block: (e0 + e2) + (e1 + e3).
    const __m512 w2 =
        _mm512_add_ps(w4, _mm512_maskz_permute_ps(kAll, w4, 0x0e));
    const __m512 w1 =
        _mm512_add_ps(w2, _mm512_maskz_permute_ps(kAll, w2, 0x01));
    alignas(64) float l[16];
    _mm512_store_ps(l, w1);
    out[i] = l[0];
    out[i + 1] = l[4];
    out[i + 2] = l[8];
    out[i + 3] = l[12];
  }
  for (; i < n; ++i) out[i] = acc[i].Reduce();
}
#elif defined(__AVX2__) && defined(__FMA__) && !defined(RLRT_GEMM_SCALAR_ONLY)
struct Lanes {
  __m256 lo, hi;
  static Lanes Zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static Lanes Splat(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
  static Lanes Load(const float* p) {
    return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
  }
  static Lanes LoadPartial(const float* p, int n) {
    alignas(32) float buf[16] = {};
    std::memcpy(buf, p, n * sizeof(float));
    return Load(buf);
  }
  static Lanes LoadBf16(const uint16_t* p) {
    return {Widen8(p), Widen8(p + 8)};
  }
  static __m256 Widen8(const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
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
  static Lanes Splat(float x) {
    Lanes l;
    for (float& e : l.v) e = x;
    return l;
  }
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
  static Lanes LoadBf16(const uint16_t* p) {
    Lanes l;
    for (int i = 0; i < 16; ++i) {
      const uint32_t bits = static_cast<uint32_t>(p[i]) << 16;
      std::memcpy(&l.v[i], &bits, sizeof(float));
    }
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

#if !(defined(__AVX512F__) && !defined(RLRT_GEMM_SCALAR_ONLY))
inline void ReduceMany(const Lanes* acc, int n, float* out) {
  for (int i = 0; i < n; ++i) out[i] = acc[i].Reduce();
}
#endif

}  // namespace
}  // namespace rlrt::gemm_internal

#endif  // RLRT_MODELS_OPS_LANES16_H_
