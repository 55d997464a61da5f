#include "models/ops/gemm_bf16.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "models/dtype.h"
#include "models/ops/gemm_tiles.h"
#include "models/ops/lanes16.h"

namespace rlrt {
namespace {

using gemm_internal::Lanes;

// Thirty-two BF16 values: pairs (2l, 2l + 1) feed float lane l.
#if defined(__AVX512F__) && !defined(RLRT_GEMM_SCALAR_ONLY)
// The loads both AVX-512 kernels share; they differ only in their step.
struct Avx512Bf16Loads {
  using Elem = uint16_t;
  using Vec = __m512i;
  static constexpr int kStep = 32;
  static Vec Load(const uint16_t* p) { return _mm512_loadu_si512(p); }
  static Vec LoadPartial(const uint16_t* p, int n) {
#if defined(__AVX512BW__)
    return _mm512_maskz_loadu_epi16(static_cast<__mmask32>((1ull << n) - 1), p);
#else
    alignas(64) uint16_t buf[32] = {};
    std::memcpy(buf, p, n * sizeof(uint16_t));
    return Load(buf);
#endif
  }
};
#endif

#if defined(__AVX512BF16__) && !defined(RLRT_GEMM_SCALAR_ONLY) && \
    !defined(RLRT_GEMM_BF16_WITHOUT_DPBF16)
[[maybe_unused]] constexpr char kPath[] = "avx512_bf16";
struct Bf16Kernel : Avx512Bf16Loads {
  static void Step(Lanes& acc, const Vec& x, const Vec& w) {
    acc.v = _mm512_dpbf16_ps(acc.v, reinterpret_cast<const __m512bh&>(x),
                             reinterpret_cast<const __m512bh&>(w));
  }
};
#elif defined(__AVX512F__) && !defined(RLRT_GEMM_SCALAR_ONLY)
[[maybe_unused]] constexpr char kPath[] = "avx512f";
struct Bf16Kernel : Avx512Bf16Loads {
  // Element 2l + 1 is the high half of 32-bit word l, element 2l the low.
  static __m512 Odd(const Vec& v) {
    return _mm512_castsi512_ps(
        _mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  // The zero-masking form: the plain shift's undefined filler trips GCC
  // 12's uninitialised-value warning.
  static __m512 Even(const Vec& v) {
    return _mm512_castsi512_ps(
        _mm512_maskz_slli_epi32(static_cast<__mmask16>(0xffff), v, 16));
  }
  static void Step(Lanes& acc, const Vec& x, const Vec& w) {
    acc.v = _mm512_fmadd_ps(Odd(x), Odd(w), acc.v);
    acc.v = _mm512_fmadd_ps(Even(x), Even(w), acc.v);
  }
};
#elif defined(__AVX2__) && defined(__FMA__) && !defined(RLRT_GEMM_SCALAR_ONLY)
[[maybe_unused]] constexpr char kPath[] = "avx2";
struct Bf16Kernel {
  using Elem = uint16_t;
  struct Vec {
    __m256i lo, hi;  // Elements 0-15 (lanes 0-7) and 16-31 (lanes 8-15).
  };
  static constexpr int kStep = 32;
  static Vec Load(const uint16_t* p) {
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16))};
  }
  static Vec LoadPartial(const uint16_t* p, int n) {
    alignas(32) uint16_t buf[32] = {};
    std::memcpy(buf, p, n * sizeof(uint16_t));
    return Load(buf);
  }
  static __m256 Odd(__m256i v) {
    return _mm256_castsi256_ps(
        _mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  static __m256 Even(__m256i v) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  static void Step(Lanes& acc, const Vec& x, const Vec& w) {
    acc.lo = _mm256_fmadd_ps(Odd(x.lo), Odd(w.lo), acc.lo);
    acc.lo = _mm256_fmadd_ps(Even(x.lo), Even(w.lo), acc.lo);
    acc.hi = _mm256_fmadd_ps(Odd(x.hi), Odd(w.hi), acc.hi);
    acc.hi = _mm256_fmadd_ps(Even(x.hi), Even(w.hi), acc.hi);
  }
};
#else
[[maybe_unused]] constexpr char kPath[] = "scalar";
struct Bf16Kernel {
  using Elem = uint16_t;
  struct Vec {
    uint16_t e[32];
  };
  static constexpr int kStep = 32;
  static Vec Load(const uint16_t* p) {
    Vec v;
    std::memcpy(v.e, p, sizeof(v.e));
    return v;
  }
  static Vec LoadPartial(const uint16_t* p, int n) {
    Vec v{};
    std::memcpy(v.e, p, n * sizeof(uint16_t));
    return v;
  }
  static void Step(Lanes& acc, const Vec& x, const Vec& w) {
    for (int l = 0; l < 16; ++l) {
      acc.v[l] = std::fma(Bf16ToF32(x.e[2 * l + 1]), Bf16ToF32(w.e[2 * l + 1]),
                          acc.v[l]);
      acc.v[l] =
          std::fma(Bf16ToF32(x.e[2 * l]), Bf16ToF32(w.e[2 * l]), acc.v[l]);
    }
  }
};
#endif

}  // namespace

// Test builds compile this file again under other names: with the scalar
// path only, and with AVX-512F but without vdpbf16ps.
#if defined(RLRT_GEMM_SCALAR_ONLY)
void RowInvariantGemmBf16ScalarForTest(const GemmBf16Args& a, int64_t n_begin,
                                       int64_t n_end) {
#elif defined(RLRT_GEMM_BF16_WITHOUT_DPBF16)
void RowInvariantGemmBf16Avx512fForTest(const GemmBf16Args& a, int64_t n_begin,
                                        int64_t n_end) {
#else
const char* Bf16GemmPath() { return kPath; }

void RowInvariantGemmBf16(const GemmBf16Args& a, int64_t n_begin,
                          int64_t n_end) {
#endif
  gemm_internal::TiledGemm<Bf16Kernel>(
      {a.x, a.rows, a.k, a.w, a.bias, a.y, a.ldy, a.accumulate}, n_begin,
      n_end);
}

}  // namespace rlrt
