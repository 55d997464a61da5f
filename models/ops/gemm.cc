#include "models/ops/gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace rlrt {
namespace {

// Sixteen float lanes with fused multiply-add. Each path computes exactly
// fma(x_l, w_l, acc_l) per lane, so all paths give identical bits (a test
// builds this file a second time with RLRT_GEMM_SCALAR_ONLY to check it).
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
  // The tree of ReduceLanes below, in registers: +8, +4, +2, +1.
  float Reduce() const {
    const __m256 a =
        _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    return Reduce8(a);
  }
  static float Reduce8(__m256 a) {
    const __m128 b =
        _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
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

// The fixed reduction tree: halves folded onto each other, l[i] += l[i + w]
// for w = 8, 4, 2, 1. Every path implements exactly this tree.
float ReduceLanes(const Lanes& acc) { return acc.Reduce(); }

void WriteOutput(const GemmArgs& a, int64_t row, int64_t col, float dot) {
  float value = dot;
  if (a.bias != nullptr) value += a.bias[col];
  float* y = a.y + row * a.ldy + col;
  *y = a.accumulate ? *y + value : value;
}

// R rows starting at `row`, C columns starting at `col`, full K.
template <int R, int C>
void Tile(const GemmArgs& a, int64_t row, int64_t col) {
  const int64_t k = a.k;
  const int64_t k16 = k / 16 * 16;
  const float* x = a.x + row * k;
  const float* w = a.w + col * k;
  Lanes acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = Lanes::Zero();
  }
  for (int64_t i = 0; i < k16; i += 16) {
    Lanes wv[C];
    for (int c = 0; c < C; ++c) wv[c] = Lanes::Load(w + c * k + i);
    for (int r = 0; r < R; ++r) {
      const Lanes xv = Lanes::Load(x + r * k + i);
      for (int c = 0; c < C; ++c) acc[r][c].Fma(xv, wv[c]);
    }
  }
  if (k16 < k) {
    // The tail enters the same lanes, zero-padded: fma(0, 0, acc) = acc.
    const int rest = static_cast<int>(k - k16);
    Lanes wv[C];
    for (int c = 0; c < C; ++c)
      wv[c] = Lanes::LoadPartial(w + c * k + k16, rest);
    for (int r = 0; r < R; ++r) {
      const Lanes xv = Lanes::LoadPartial(x + r * k + k16, rest);
      for (int c = 0; c < C; ++c) acc[r][c].Fma(xv, wv[c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c)
      WriteOutput(a, row + r, col + c, ReduceLanes(acc[r][c]));
  }
}

template <int C>
void RowsTile(const GemmArgs& a, int64_t row, int64_t rows, int64_t col) {
  switch (rows) {
    case 1:
      return Tile<1, C>(a, row, col);
    case 2:
      return Tile<2, C>(a, row, col);
    case 3:
      return Tile<3, C>(a, row, col);
    case 4:
      return Tile<4, C>(a, row, col);
    case 5:
      return Tile<5, C>(a, row, col);
    case 6:
      return Tile<6, C>(a, row, col);
    case 7:
      return Tile<7, C>(a, row, col);
    default:
      return Tile<8, C>(a, row, col);
  }
}

}  // namespace

#ifdef RLRT_GEMM_SCALAR_ONLY
void RowInvariantGemmScalarForTest(const GemmArgs& a, int64_t n_begin,
                                   int64_t n_end) {
#else
void RowInvariantGemm(const GemmArgs& a, int64_t n_begin, int64_t n_end) {
#endif
  if (a.rows <= 0 || n_begin >= n_end) return;
  // Rows per block: their x (rows * k floats) stays within ~256 KiB of L2
  // while the block's pass streams the columns of W.
  const int64_t block_rows = std::max<int64_t>(
      8, (int64_t{64} << 10) / std::max<int64_t>(a.k, 1) / 8 * 8);
  for (int64_t r0 = 0; r0 < a.rows; r0 += block_rows) {
    const int64_t r1 = std::min(a.rows, r0 + block_rows);
    int64_t col = n_begin;
    for (; col + 2 <= n_end; col += 2) {
      for (int64_t row = r0; row < r1; row += 8) {
        RowsTile<2>(a, row, std::min<int64_t>(8, r1 - row), col);
      }
    }
    if (col < n_end) {
      for (int64_t row = r0; row < r1; row += 8) {
        RowsTile<1>(a, row, std::min<int64_t>(8, r1 - row), col);
      }
    }
  }
}

}  // namespace rlrt
