#include "models/ops/linear.h"

#include <cblas.h>

#include <algorithm>

#include "models/parallel.h"

namespace rlrt {
namespace {

using Lanes = float __attribute__((vector_size(64)));  // 16 floats.

// y[m, n] for m < M (M <= kSkinnyRows) and columns [n0, n1): each weight row
// is streamed once and dotted with all M inputs, which stay in cache. Each
// row's dot product uses the same 16-lane order whatever M is, so a row's
// result does not depend on the other rows in the call.
template <int M>
void SkinnyBlock(const LinearArgs& a, int64_t ldy, int64_t n0, int64_t n1) {
  const int64_t k = a.in;
  const int64_t k16 = k / 16 * 16;
  for (int64_t n = n0; n < n1; ++n) {
    const float* w = a.weight + n * k;
    Lanes acc[M] = {};
    for (int64_t i = 0; i < k16; i += 16) {
      Lanes wv;
      __builtin_memcpy(&wv, w + i, sizeof(wv));
      for (int m = 0; m < M; ++m) {
        Lanes xv;
        __builtin_memcpy(&xv, a.x + m * k + i, sizeof(xv));
        acc[m] += xv * wv;
      }
    }
    for (int m = 0; m < M; ++m) {
      float lanes[16];
      __builtin_memcpy(lanes, &acc[m], sizeof(lanes));
      for (int64_t i = k16, l = 0; i < k; ++i, ++l)
        lanes[l] += a.x[m * k + i] * w[i];
      for (int width = 8; width > 0; width /= 2) {
        for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
      }
      float* y = a.y + m * ldy + n;
      float value = lanes[0] + (a.bias != nullptr ? a.bias[n] : 0.0f);
      *y = a.accumulate ? *y + value : value;
    }
  }
}

void SkinnyColumns(const LinearArgs& a, int64_t ldy, int64_t n0, int64_t n1) {
  switch (a.rows) {
    case 1:
      return SkinnyBlock<1>(a, ldy, n0, n1);
    case 2:
      return SkinnyBlock<2>(a, ldy, n0, n1);
    case 3:
      return SkinnyBlock<3>(a, ldy, n0, n1);
    case 4:
      return SkinnyBlock<4>(a, ldy, n0, n1);
    case 5:
      return SkinnyBlock<5>(a, ldy, n0, n1);
    case 6:
      return SkinnyBlock<6>(a, ldy, n0, n1);
    case 7:
      return SkinnyBlock<7>(a, ldy, n0, n1);
    default:
      return SkinnyBlock<8>(a, ldy, n0, n1);
  }
}

}  // namespace

Status LinearForward(const LinearArgs& a, Mesh* mesh) {
  if (a.rows == 0 || a.out == 0) return OkStatus();
  const int64_t ldy = a.ldy == 0 ? a.out : a.ldy;
  // Blocks of 16 columns keep each worker's slice of W cache-line aligned
  // and give sgemm's micro-kernels whole panels.
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (a.out + kBlock - 1) / kBlock;
  return ParallelForOrInline(mesh, blocks, [&](const Shard& s) {
    const int64_t n0 = s.begin * kBlock;
    const int64_t n1 = std::min(a.out, s.end * kBlock);
    if (n0 >= n1) return OkStatus();
    if (a.rows <= kSkinnyRows) {
      SkinnyColumns(a, ldy, n0, n1);
      return OkStatus();
    }
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
    return OkStatus();
  });
}

}  // namespace rlrt
