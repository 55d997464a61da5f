#include "models/ops/linear.h"

#include <cblas.h>

#include <algorithm>

#include "models/ops/gemm.h"
#include "models/parallel.h"

namespace rlrt {
namespace {

void BlasColumns(const LinearArgs& a, int64_t ldy, int64_t n0, int64_t n1) {
  float* y = a.y + n0;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a.rows, n1 - n0, a.in,
              1.0f, a.x, a.in, a.weight + n0 * a.in, a.in,
              a.accumulate ? 1.0f : 0.0f, y, ldy);
  if (a.bias != nullptr) {
    for (int64_t t = 0; t < a.rows; ++t) {
      float* row = y + t * ldy;
      for (int64_t n = 0; n < n1 - n0; ++n) row[n] += a.bias[n0 + n];
    }
  }
}

}  // namespace

Status LinearForward(const LinearArgs& a, Mesh* mesh) {
  if (a.rows == 0 || a.out == 0) return OkStatus();
  const int64_t ldy = a.ldy == 0 ? a.out : a.ldy;
  // Blocks of 16 columns keep each worker's slice of W cache-line aligned.
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (a.out + kBlock - 1) / kBlock;
  const GemmArgs gemm{a.x,    a.rows, a.in, a.weight,
                      a.bias, a.y,    ldy,  a.accumulate};
  return ParallelForOrInline(mesh, blocks, [&](const Shard& s) {
    const int64_t n0 = s.begin * kBlock;
    const int64_t n1 = std::min(a.out, s.end * kBlock);
    if (n0 >= n1) return OkStatus();
    if (a.kernel == MatmulKernel::kOpenBlas) {
      BlasColumns(a, ldy, n0, n1);
    } else {
      RowInvariantGemm(gemm, n0, n1);
    }
    return OkStatus();
  });
}

}  // namespace rlrt
