// The accumulating product of models/ops/gemm_accumulate.h with BF16
// operands, for the backward passes of BF16 weights (models/ops/linear.h):
//   C[i, j] += sum_p A(i, p) * B[p, j],   A(i, p) = a[i * a_row_stride +
//                                                     p * a_inner_stride],
// A and B [inner, ldb] holding BF16 bit patterns, C float32. As in the
// float32 product, B is read along its rows and A through strides, so
// dX = dY W reads dY by rows and W as stored, and dW += dY^T X reads dY
// through swapped strides: neither needs a transposed copy.
//
// Summation order, fixed: p runs in blocks of kAccumulateBlock; within a
// block each output starts from zero and takes the pairs (p, p + 1) in
// order, adding the product of element p + 1 and then that of element p
// (each product exact, each sum rounded to nearest even), which is what
// AVX-512 BF16's vdpbf16ps does per float lane; an odd inner size pads its
// last pair with zeros. The block's total is then added to C. An output's
// bits therefore depend only on P and its own operands, never on the tile,
// range or worker that computes it, and the portable path performs the
// same std::fma operations, so both paths give the same bits (tested).
// The subnormal caveat of models/ops/gemm_bf16.h applies: vdpbf16ps treats
// subnormal inputs and results as zero.
//
// Cost model: tiles of 8 rows x 32 columns in registers; one pair step
// loads two rows of B (32 columns each), interleaves them into pairs once
// and reuses them for the tile's 8 rows, each of which broadcasts its pair
// of A. The walk is that of gemm_accumulate.h (inner blocks, row panels,
// column tiles); an A with a_inner_stride other than 1 is packed by rows
// one panel and inner block at a time (64 x 256 elements, reused by every
// column tile of the panel).
#ifndef RLRT_MODELS_OPS_GEMM_ACCUMULATE_BF16_H_
#define RLRT_MODELS_OPS_GEMM_ACCUMULATE_BF16_H_

#include <cstdint>

#include "models/ops/gemm_accumulate.h"

namespace rlrt {

struct AccumulateGemmBf16Args {
  const uint16_t* a = nullptr;
  int64_t a_row_stride = 0;     // Distance between A(i, p) and A(i + 1, p).
  int64_t a_inner_stride = 0;   // Distance between A(i, p) and A(i, p + 1).
  const uint16_t* b = nullptr;  // [inner, ldb]
  int64_t ldb = 0;
  float* c = nullptr;  // [rows, ldc]; accumulated into.
  int64_t ldc = 0;
  int64_t inner = 0;  // P
};

// Updates C[rows [row_begin, row_end), columns [col_begin, col_end)] on the
// calling thread.
void AccumulateGemmBf16(const AccumulateGemmBf16Args& args, int64_t row_begin,
                        int64_t row_end, int64_t col_begin, int64_t col_end);

// "avx512_bf16" or "portable": which path AccumulateGemmBf16 takes here.
const char* AccumulateGemmBf16Path();

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_GEMM_ACCUMULATE_BF16_H_
