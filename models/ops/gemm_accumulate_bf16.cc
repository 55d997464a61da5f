#include "models/ops/gemm_accumulate_bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "models/dtype.h"

namespace rlrt {
namespace {
// Named apart from gemm_accumulate.cc's anonymous-namespace twins, which a
// unity build puts in the same translation unit.
namespace accumulate_bf16 {

constexpr int kTileRows = 8;
constexpr int kTileCols = 32;

#if defined(__AVX512BF16__) && defined(__AVX512BW__) && \
    !defined(RLRT_GEMM_SCALAR_ONLY)
[[maybe_unused]] constexpr char kPath[] = "avx512_bf16";

// The pair (A(i, p), A(i, p + 1)) as one 32-bit word in every lane, `a`
// pointing at A(i, p) with A(i, p + 1) next to it; `with_next` false pads
// with a zero for an odd inner size's last element.
inline __m512bh PairOfA(const uint16_t* a, bool with_next) {
  uint32_t word = a[0];
  if (with_next) std::memcpy(&word, a, sizeof(word));
  const __m512i v = _mm512_set1_epi32(static_cast<int>(word));
  return reinterpret_cast<const __m512bh&>(v);
}

// Interleaving rows p and p + 1 of B within 128-bit lanes puts column
// 8q + i in word 4q + i of `lo` and column 8q + 4 + i in word 4q + i of
// `hi`; Columns() undoes that order once per block.
inline void Columns(__m512 lo, __m512 hi, __m512* first16, __m512* last16) {
  constexpr __mmask16 kAll = 0xffff;
  const __m512 low_quarters =
      _mm512_maskz_shuffle_f32x4(kAll, lo, hi, _MM_SHUFFLE(1, 0, 1, 0));
  const __m512 high_quarters =
      _mm512_maskz_shuffle_f32x4(kAll, lo, hi, _MM_SHUFFLE(3, 2, 3, 2));
  *first16 = _mm512_maskz_shuffle_f32x4(kAll, low_quarters, low_quarters,
                                        _MM_SHUFFLE(3, 1, 2, 0));
  *last16 = _mm512_maskz_shuffle_f32x4(kAll, high_quarters, high_quarters,
                                       _MM_SHUFFLE(3, 1, 2, 0));
}

// The tiles read A by rows (a_inner_stride 1; AccumulateGemmBf16 packs a
// strided A first).
template <int R>
void Tile(const AccumulateGemmBf16Args& g, int64_t row, int64_t col, int width,
          int64_t p0, int64_t p1) {
  const __mmask32 columns =
      width >= kTileCols ? ~__mmask32{0} : (__mmask32{1} << width) - 1;
  __m512 lo[R], hi[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
  const uint16_t* a = g.a + row * g.a_row_stride;
  const uint16_t* b = g.b + col;
  // One inline step per pair: the 2R accumulators must stay in registers
  // (a lambda capturing the arrays made GCC keep them on the stack).
  int64_t p = p0;
  for (; p < p1; p += 2) {
    const bool with_next = p + 1 < p1;
    const __m512i even_row = _mm512_maskz_loadu_epi16(columns, b + p * g.ldb);
    const __m512i odd_row =
        with_next ? _mm512_maskz_loadu_epi16(columns, b + (p + 1) * g.ldb)
                  : _mm512_setzero_si512();
    const __m512i lo_pairs = _mm512_unpacklo_epi16(even_row, odd_row);
    const __m512i hi_pairs = _mm512_unpackhi_epi16(even_row, odd_row);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh pair = PairOfA(a + r * g.a_row_stride + p, with_next);
      lo[r] = _mm512_dpbf16_ps(lo[r], pair,
                               reinterpret_cast<const __m512bh&>(lo_pairs));
      hi[r] = _mm512_dpbf16_ps(hi[r], pair,
                               reinterpret_cast<const __m512bh&>(hi_pairs));
    }
  }
  const __mmask16 first_mask = static_cast<__mmask16>(columns);
  const __mmask16 last_mask = static_cast<__mmask16>(columns >> 16);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    __m512 first16, last16;
    Columns(lo[r], hi[r], &first16, &last16);
    float* c = g.c + (row + r) * g.ldc + col;
    _mm512_mask_storeu_ps(
        c, first_mask,
        _mm512_add_ps(_mm512_maskz_loadu_ps(first_mask, c), first16));
    if (last_mask != 0) {
      _mm512_mask_storeu_ps(
          c + 16, last_mask,
          _mm512_add_ps(_mm512_maskz_loadu_ps(last_mask, c + 16), last16));
    }
  }
}

#else
[[maybe_unused]] constexpr char kPath[] = "portable";

template <int R>
void Tile(const AccumulateGemmBf16Args& g, int64_t row, int64_t col, int width,
          int64_t p0, int64_t p1) {
  float acc[R][kTileCols] = {};
  auto a_at = [&](int r, int64_t q) {
    return Bf16ToF32(g.a[(row + r) * g.a_row_stride + q]);
  };
  int64_t p = p0;
  auto step = [&](const uint16_t* even_row, const uint16_t* odd_row) {
    for (int r = 0; r < R; ++r) {
      const float a_even = a_at(r, p);
      const float a_odd = odd_row != nullptr ? a_at(r, p + 1) : 0.0f;
      for (int c = 0; c < width; ++c) {
        const float b_odd = odd_row != nullptr ? Bf16ToF32(odd_row[c]) : 0.0f;
        acc[r][c] = std::fma(a_odd, b_odd, acc[r][c]);
        acc[r][c] = std::fma(a_even, Bf16ToF32(even_row[c]), acc[r][c]);
      }
    }
  };
  for (; p + 1 < p1; p += 2) {
    step(g.b + p * g.ldb + col, g.b + (p + 1) * g.ldb + col);
  }
  if (p < p1) step(g.b + p * g.ldb + col, nullptr);
  for (int r = 0; r < R; ++r) {
    float* out = g.c + (row + r) * g.ldc + col;
    for (int c = 0; c < width; ++c) out[c] += acc[r][c];
  }
}
#endif

using TileFn = void (*)(const AccumulateGemmBf16Args&, int64_t, int64_t, int,
                        int64_t, int64_t);
// kTiles[r] computes a tile of r rows.
constexpr TileFn kTiles[kTileRows + 1] = {nullptr, Tile<1>, Tile<2>,
                                          Tile<3>, Tile<4>, Tile<5>,
                                          Tile<6>, Tile<7>, Tile<8>};

}  // namespace accumulate_bf16
}  // namespace

// The test build compiles this file again with the portable path only.
#if defined(RLRT_GEMM_SCALAR_ONLY)
void AccumulateGemmBf16PortableForTest(const AccumulateGemmBf16Args& g,
                                       int64_t row_begin, int64_t row_end,
                                       int64_t col_begin, int64_t col_end) {
#else
const char* AccumulateGemmBf16Path() { return accumulate_bf16::kPath; }

void AccumulateGemmBf16(const AccumulateGemmBf16Args& g, int64_t row_begin,
                        int64_t row_end, int64_t col_begin, int64_t col_end) {
#endif
  using accumulate_bf16::kTileCols;
  using accumulate_bf16::kTileRows;
  const accumulate_bf16::TileFn* tiles = accumulate_bf16::kTiles;
  if (g.a_inner_stride == 1) {
    ForEachAccumulateTile<kTileRows, kTileCols>(
        g.inner, row_begin, row_end, col_begin, col_end,
        [](int64_t, int64_t, int64_t, int64_t) {},
        [&](int64_t row, int64_t col, int rows, int width, int64_t p0,
            int64_t p1) { tiles[rows](g, row, col, width, p0, p1); });
    return;
  }
  // A read through a stride (dW's dY^T): each panel's slice of A for one
  // inner block is first packed by rows, so the tiles read it as pairs in
  // order (a stride of a vocabulary's width per element would defeat the
  // caches and the prefetchers). The packed slice holds the same values,
  // so every output's arithmetic, and its bits, are unchanged.
  thread_local std::vector<uint16_t> packed;
  packed.resize(kPanelRows * kAccumulateBlock);
  AccumulateGemmBf16Args slice;
  int64_t panel_begin = 0;
  ForEachAccumulateTile<kTileRows, kTileCols>(
      g.inner, row_begin, row_end, col_begin, col_end,
      [&](int64_t panel, int64_t panel_end, int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          const uint16_t* column = g.a + p * g.a_inner_stride;
          for (int64_t r = 0; r < panel_end - panel; ++r) {
            packed[r * kAccumulateBlock + (p - p0)] =
                column[(panel + r) * g.a_row_stride];
          }
        }
        panel_begin = panel;
        slice = {.a = packed.data(),
                 .a_row_stride = kAccumulateBlock,
                 .a_inner_stride = 1,
                 .b = g.b + p0 * g.ldb,
                 .ldb = g.ldb,
                 .c = g.c + panel * g.ldc,
                 .ldc = g.ldc,
                 .inner = p1 - p0};
      },
      [&](int64_t row, int64_t col, int rows, int width, int64_t, int64_t) {
        tiles[rows](slice, row - panel_begin, col, width, 0, slice.inner);
      });
}

}  // namespace rlrt
