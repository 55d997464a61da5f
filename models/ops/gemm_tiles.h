// The tiling every row-invariant GEMM here shares (models/ops/gemm.h,
// gemm_bf16.h): outputs built R rows x C columns at a time in registers,
// each over its full K; rows processed in blocks whose x stays in L2 while
// the block streams its columns of W once. A Kernel supplies the element
// type, how many elements one step takes (kStep), loads, and the step's
// lane arithmetic; the operations that produce an output depend only on K,
// never on the tile or block it falls in. Internal to those kernels.
#ifndef RLRT_MODELS_OPS_GEMM_TILES_H_
#define RLRT_MODELS_OPS_GEMM_TILES_H_

#include <algorithm>
#include <cstdint>

#include "models/ops/lanes16.h"

namespace rlrt::gemm_internal {
// Unnamed on purpose: each kernel file, and its scalar-only test build,
// gets its own copy, compiled for the instruction set of that file.
namespace {

template <typename Elem>
struct TileArgs {
  const Elem* x;  // [rows, k]
  int64_t rows;
  int64_t k;
  const Elem* w;      // [n, k]
  const float* bias;  // [n] or null
  float* y;           // [rows, ldy]
  int64_t ldy;
  bool accumulate;
};

template <typename Elem>
void WriteOutput(const TileArgs<Elem>& a, int64_t row, int64_t col, float dot) {
  float value = dot;
  if (a.bias != nullptr) value += a.bias[col];
  float* y = a.y + row * a.ldy + col;
  *y = a.accumulate ? *y + value : value;
}

// R rows starting at `row`, C columns starting at `col`, full K. With
// `prefetch`, C rows of W there (k apart) are fetched into cache at the
// same pace, one line per row and step: the next strip of W then streams
// in from memory while this one computes, instead of stalling its first
// pass (a decode step reads every weight once, mostly from DRAM).
template <typename Kernel, int R, int C>
void Tile(const TileArgs<typename Kernel::Elem>& a, int64_t row, int64_t col,
          const typename Kernel::Elem* prefetch = nullptr) {
  constexpr int kStep = Kernel::kStep;
  const int64_t k = a.k;
  const int64_t k_full = k / kStep * kStep;
  const auto* x = a.x + row * k;
  const auto* w = a.w + col * k;
  Lanes acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = Lanes::Zero();
  }
  for (int64_t i = 0; i < k_full; i += kStep) {
    if (prefetch != nullptr) {
      for (int c = 0; c < C; ++c) __builtin_prefetch(prefetch + c * k + i);
    }
    typename Kernel::Vec wv[C];
    for (int c = 0; c < C; ++c) wv[c] = Kernel::Load(w + c * k + i);
    for (int r = 0; r < R; ++r) {
      const typename Kernel::Vec xv = Kernel::Load(x + r * k + i);
      for (int c = 0; c < C; ++c) Kernel::Step(acc[r][c], xv, wv[c]);
    }
  }
  if (k_full < k) {
    // The tail enters the same lanes, zero-padded: fma(0, 0, acc) = acc.
    const int rest = static_cast<int>(k - k_full);
    typename Kernel::Vec wv[C];
    for (int c = 0; c < C; ++c)
      wv[c] = Kernel::LoadPartial(w + c * k + k_full, rest);
    for (int r = 0; r < R; ++r) {
      const typename Kernel::Vec xv =
          Kernel::LoadPartial(x + r * k + k_full, rest);
      for (int c = 0; c < C; ++c) Kernel::Step(acc[r][c], xv, wv[c]);
    }
  }
  float dots[R * C];
  ReduceMany(&acc[0][0], R * C, dots);
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c)
      WriteOutput(a, row + r, col + c, dots[r * C + c]);
  }
}

template <typename Kernel, int C>
void RowsTile(const TileArgs<typename Kernel::Elem>& a, int64_t row,
              int64_t rows, int64_t col,
              const typename Kernel::Elem* prefetch = nullptr) {
  switch (rows) {
    case 1:
      return Tile<Kernel, 1, C>(a, row, col, prefetch);
    case 2:
      return Tile<Kernel, 2, C>(a, row, col, prefetch);
    case 3:
      return Tile<Kernel, 3, C>(a, row, col, prefetch);
    case 4:
      return Tile<Kernel, 4, C>(a, row, col, prefetch);
    case 5:
      return Tile<Kernel, 5, C>(a, row, col, prefetch);
    case 6:
      return Tile<Kernel, 6, C>(a, row, col, prefetch);
    case 7:
      return Tile<Kernel, 7, C>(a, row, col, prefetch);
    default:
      return Tile<Kernel, 8, C>(a, row, col, prefetch);
  }
}

// Eight columns from `col` for `rows` (1 to 8) rows from `row`. A tile's
// sums are independent chains of multiply-adds; with few rows, wider tiles
// keep enough of them in flight to hide the instruction's latency (decode
// of one sequence would otherwise run two chains at a time). With
// `prefetch`, the eight rows of W there are fetched along the way (once:
// by the tiles of the strip's first rows).
template <typename Kernel>
void ColumnStrip8(const TileArgs<typename Kernel::Elem>& a, int64_t row,
                  int64_t rows, int64_t col,
                  const typename Kernel::Elem* prefetch) {
  const int64_t k = a.k;
  // The prefetch rows of the tile at column c (null stays null).
  auto ahead = [&](int64_t c) {
    return prefetch != nullptr ? prefetch + (c - col) * k : nullptr;
  };
  switch (rows) {
    case 1:
      return Tile<Kernel, 1, 8>(a, row, col, prefetch);
    case 2:
      return Tile<Kernel, 2, 8>(a, row, col, prefetch);
    case 3:
      Tile<Kernel, 3, 4>(a, row, col, prefetch);
      return Tile<Kernel, 3, 4>(a, row, col + 4, ahead(col + 4));
    case 4:
      Tile<Kernel, 4, 4>(a, row, col, prefetch);
      return Tile<Kernel, 4, 4>(a, row, col + 4, ahead(col + 4));
    case 8:
      for (int64_t c = col; c < col + 8; c += 4) {
        Tile<Kernel, 4, 4>(a, row, c, ahead(c));
        Tile<Kernel, 4, 4>(a, row + 4, c);
      }
      return;
    default:
      for (int64_t c = col; c < col + 8; c += 2) {
        RowsTile<Kernel, 2>(a, row, rows, c, ahead(c));
      }
  }
}

// Output columns [n_begin, n_end) on the calling thread.
template <typename Kernel>
void TiledGemm(const TileArgs<typename Kernel::Elem>& a, int64_t n_begin,
               int64_t n_end) {
  if (a.rows <= 0 || n_begin >= n_end) return;
  // Rows per block: their x (rows * k elements) stays within ~256 KiB of
  // L2 while the block's pass streams the columns of W.
  const int64_t row_bytes = std::max<int64_t>(a.k, 1) *
                            static_cast<int64_t>(sizeof(typename Kernel::Elem));
  const int64_t block_rows =
      std::max<int64_t>(8, (int64_t{256} << 10) / row_bytes / 8 * 8);
  for (int64_t r0 = 0; r0 < a.rows; r0 += block_rows) {
    const int64_t r1 = std::min(a.rows, r0 + block_rows);
    int64_t col = n_begin;
    for (; col + 8 <= n_end; col += 8) {
      const auto* next_strip =
          col + 16 <= n_end ? a.w + (col + 8) * a.k : nullptr;
      for (int64_t row = r0; row < r1; row += 8) {
        ColumnStrip8<Kernel>(a, row, std::min<int64_t>(8, r1 - row), col,
                             row == r0 ? next_strip : nullptr);
      }
    }
    for (; col + 2 <= n_end; col += 2) {
      for (int64_t row = r0; row < r1; row += 8) {
        RowsTile<Kernel, 2>(a, row, std::min<int64_t>(8, r1 - row), col);
      }
    }
    if (col < n_end) {
      for (int64_t row = r0; row < r1; row += 8) {
        RowsTile<Kernel, 1>(a, row, std::min<int64_t>(8, r1 - row), col);
      }
    }
  }
}

}  // namespace
}  // namespace rlrt::gemm_internal

#endif  // RLRT_MODELS_OPS_GEMM_TILES_H_
