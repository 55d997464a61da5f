// Accumulating matrix product for the backward passes:
//   C[i, j] += sum_p A(i, p) * B[p, j],   A(i, p) = a[i * a_row_stride +
//                                                     p * a_inner_stride].
// B is read along its rows, so neither backward product of a linear layer
// needs a transposed copy of anything: dX = dY W reads A = dY by rows and
// B = W; dW += dY^T X reads A = dY^T through swapped strides and B = X.
//
// Summation order, fixed: p runs in blocks of kAccumulateBlock; within a
// block, each output's products are chained by fused multiply-adds in p
// order starting from zero, and the block's total is then added to C. An
// output's arithmetic therefore depends only on P and its own operands, not
// on the tile, row/column range or worker that computes it, so splitting the
// work across any number of workers gives the same bits (every path below
// performs exactly these std::fma operations). Blocking also keeps long
// reductions accurate: the rounding error grows like (256 + P / 256) ulps
// instead of P ulps, which matters for dX of the LM head (P = vocabulary).
//
// Cost model: tiles of 8 rows x 32 columns stay in registers; each block of
// B (256 x 32 floats, 32 KiB) is reused by every row tile of the range.
#ifndef RLRT_MODELS_OPS_GEMM_ACCUMULATE_H_
#define RLRT_MODELS_OPS_GEMM_ACCUMULATE_H_

#include <algorithm>
#include <cstdint>

namespace rlrt {

inline constexpr int64_t kAccumulateBlock = 256;

// The walk both accumulating products share: inner blocks outermost, then
// panels of kPanelRows rows, then column tiles of kTileCols, then the row
// tiles of the panel. A panel's slice of A (kPanelRows x one inner block)
// and a column tile's slice of B stay in the first cache levels while they
// are reused. Calls start_panel(panel, panel_end, p0, p1) before each
// panel's tiles of an inner block, then tile(row, col, rows, width, p0, p1)
// for each of them.
inline constexpr int64_t kPanelRows = 64;
template <int kTileRows, int kTileCols, typename PanelFn, typename TileFn>
void ForEachAccumulateTile(int64_t inner, int64_t row_begin, int64_t row_end,
                           int64_t col_begin, int64_t col_end,
                           PanelFn&& start_panel, TileFn&& tile) {
  if (row_begin >= row_end || col_begin >= col_end) return;
  for (int64_t p0 = 0; p0 < inner; p0 += kAccumulateBlock) {
    const int64_t p1 = std::min(inner, p0 + kAccumulateBlock);
    for (int64_t panel = row_begin; panel < row_end; panel += kPanelRows) {
      const int64_t panel_end = std::min(row_end, panel + kPanelRows);
      start_panel(panel, panel_end, p0, p1);
      for (int64_t col = col_begin; col < col_end; col += kTileCols) {
        const int width =
            static_cast<int>(std::min<int64_t>(kTileCols, col_end - col));
        for (int64_t row = panel; row < panel_end; row += kTileRows) {
          tile(row, col,
               static_cast<int>(std::min<int64_t>(kTileRows, panel_end - row)),
               width, p0, p1);
        }
      }
    }
  }
}

struct AccumulateGemmArgs {
  const float* a = nullptr;
  int64_t a_row_stride = 0;    // Distance between A(i, p) and A(i + 1, p).
  int64_t a_inner_stride = 0;  // Distance between A(i, p) and A(i, p + 1).
  const float* b = nullptr;    // [inner, ldb], row-major.
  int64_t ldb = 0;
  float* c = nullptr;  // [rows, ldc], row-major; accumulated into.
  int64_t ldc = 0;
  int64_t inner = 0;  // P
};

// Updates C[rows [row_begin, row_end), columns [col_begin, col_end)] on the
// calling thread.
void AccumulateGemm(const AccumulateGemmArgs& args, int64_t row_begin,
                    int64_t row_end, int64_t col_begin, int64_t col_end);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_GEMM_ACCUMULATE_H_
