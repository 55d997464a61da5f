#include "models/ops/gemm_accumulate.h"

#include <algorithm>
#include <cmath>

namespace rlrt {
namespace {

constexpr int kTileRows = 8;
constexpr int kTileCols = 32;

// Chains R rows x `width` columns (width <= kTileCols) of products over
// inner indices [p0, p1) into acc. kFull fixes width = kTileCols at compile
// time so the compiler keeps acc in vector registers; the partial tile
// performs the same std::fma operations column by column.
template <int R, bool kFull>
void Chain(const AccumulateGemmArgs& g, int64_t row, int64_t col, int width,
           int64_t p0, int64_t p1, float (&acc)[R][kTileCols]) {
  const int cols = kFull ? kTileCols : width;
  const float* a = g.a + row * g.a_row_stride;
  for (int64_t p = p0; p < p1; ++p) {
    const float* b = g.b + p * g.ldb + col;
    const float* ap = a + p * g.a_inner_stride;
    for (int r = 0; r < R; ++r) {
      const float av = ap[r * g.a_row_stride];
      for (int c = 0; c < cols; ++c) acc[r][c] = std::fma(av, b[c], acc[r][c]);
    }
  }
}

// One block's sums of an R-row tile, added to C.
template <int R>
void Tile(const AccumulateGemmArgs& g, int64_t row, int64_t col, int width,
          int64_t p0, int64_t p1) {
  float acc[R][kTileCols] = {};
  if (width == kTileCols) {
    Chain<R, true>(g, row, col, width, p0, p1, acc);
  } else {
    Chain<R, false>(g, row, col, width, p0, p1, acc);
  }
  for (int r = 0; r < R; ++r) {
    float* out = g.c + (row + r) * g.ldc + col;
    for (int c = 0; c < width; ++c) out[c] += acc[r][c];
  }
}

using TileFn = void (*)(const AccumulateGemmArgs&, int64_t, int64_t, int,
                        int64_t, int64_t);
// kTiles[r] computes a tile of r rows.
constexpr TileFn kTiles[kTileRows + 1] = {nullptr, Tile<1>, Tile<2>,
                                          Tile<3>, Tile<4>, Tile<5>,
                                          Tile<6>, Tile<7>, Tile<8>};

}  // namespace

void AccumulateGemm(const AccumulateGemmArgs& g, int64_t row_begin,
                    int64_t row_end, int64_t col_begin, int64_t col_end) {
  ForEachAccumulateTile<kTileRows, kTileCols>(
      g.inner, row_begin, row_end, col_begin, col_end,
      [](int64_t, int64_t, int64_t, int64_t) {},
      [&](int64_t row, int64_t col, int rows, int width, int64_t p0,
          int64_t p1) { kTiles[rows](g, row, col, width, p0, p1); });
}

}  // namespace rlrt
