#include "models/ops/gemm.h"

#include "models/ops/gemm_tiles.h"
#include "models/ops/lanes16.h"

namespace rlrt {
namespace {

using gemm_internal::Lanes;

// Float32 x float32: one fused multiply-add per lane and element.
struct F32Kernel {
  using Elem = float;
  using Vec = Lanes;
  static constexpr int kStep = 16;
  static Vec Load(const float* p) { return Lanes::Load(p); }
  static Vec LoadPartial(const float* p, int n) {
    return Lanes::LoadPartial(p, n);
  }
  static void Step(Lanes& acc, const Vec& x, const Vec& w) { acc.Fma(x, w); }
};

}  // namespace

#ifdef RLRT_GEMM_SCALAR_ONLY
void RowInvariantGemmScalarForTest(const GemmArgs& a, int64_t n_begin,
                                   int64_t n_end) {
#else
void RowInvariantGemm(const GemmArgs& a, int64_t n_begin, int64_t n_end) {
#endif
  gemm_internal::TiledGemm<F32Kernel>(
      {a.x, a.rows, a.k, a.w, a.bias, a.y, a.ldy, a.accumulate}, n_begin,
      n_end);
}

}  // namespace rlrt
