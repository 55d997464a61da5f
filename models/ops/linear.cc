#include "models/ops/linear.h"

#include <cblas.h>

#include <algorithm>
#include <string>

#include "models/ops/bf16_activations.h"
#include "models/ops/column_sums.h"
#include "models/ops/gemm.h"
#include "models/ops/gemm_accumulate.h"
#include "models/ops/gemm_accumulate_bf16.h"
#include "models/ops/gemm_bf16.h"
#include "partition/parallel.h"

namespace rlrt {
namespace {

void BlasColumns(const LinearArgs& a, int64_t ldy, int64_t n0, int64_t n1) {
  float* y = a.y + n0;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a.rows, n1 - n0, a.in,
              1.0f, a.x, a.in, a.weight.f32() + n0 * a.in, a.in,
              a.accumulate ? 1.0f : 0.0f, y, ldy);
  if (a.bias != nullptr) {
    for (int64_t t = 0; t < a.rows; ++t) {
      float* row = y + t * ldy;
      for (int64_t n = 0; n < n1 - n0; ++n) row[n] += a.bias[n0 + n];
    }
  }
}

Status CheckWeightDType(const MatrixRef& weight, MatmulKernel kernel) {
  if (weight.dtype == DType::kF32) return OkStatus();
  if (weight.dtype != DType::kBF16) {
    return InvalidArgumentError("linear: weights of dtype " +
                                std::string(DTypeName(weight.dtype)) +
                                " are not computed (float32 or BF16 only)");
  }
  if (kernel == MatmulKernel::kOpenBlas) {
    return InvalidArgumentError(
        "linear: the OpenBLAS kernel takes float32 weights only");
  }
  return OkStatus();
}

// Blocks of input columns (dx) and output rows (dweight) handed to workers:
// multiples of the kernel's tile, so every worker count tiles alike.
constexpr int64_t kDxColumnBlock = 32;
constexpr int64_t kDwRowBlock = 8;

// fn(n0, n1) for the dweight rows [n0, n1) of each worker's share.
template <typename Fn>
Status ForEachDwRowRange(const LinearBackwardArgs& a, Mesh* mesh, Fn&& fn) {
  const int64_t blocks = (a.out + kDwRowBlock - 1) / kDwRowBlock;
  return ParallelForOrInline(mesh, blocks, [&](const Shard& s) {
    fn(s.begin * kDwRowBlock, std::min(a.out, s.end * kDwRowBlock));
    return OkStatus();
  });
}

// fn(k0, k1) for the dx columns [k0, k1) of each worker's share, zeroed
// first unless accumulate_dx.
template <typename Fn>
Status ForEachDxColumnRange(const LinearBackwardArgs& a, Mesh* mesh, Fn&& fn) {
  const int64_t blocks = (a.in + kDxColumnBlock - 1) / kDxColumnBlock;
  return ParallelForOrInline(mesh, blocks, [&](const Shard& s) {
    const int64_t k0 = s.begin * kDxColumnBlock;
    const int64_t k1 = std::min(a.in, s.end * kDxColumnBlock);
    if (!a.accumulate_dx) {
      for (int64_t t = 0; t < a.rows; ++t)
        std::fill(a.dx + t * a.in + k0, a.dx + t * a.in + k1, 0.0f);
    }
    fn(k0, k1);
    return OkStatus();
  });
}

bool UsesBf16Products(const LinearBackwardArgs& a) {
  return a.weight.dtype == DType::kBF16 && a.bf16_products;
}

// The BF16 products: dX += dy W and dW += dy^T x, dy and x as BF16.
Status Bf16Gradients(const LinearBackwardArgs& a, Mesh* mesh) {
  const bool weight_gradient = a.dweight != nullptr && a.rows > 0;
  ASSIGN_OR_RETURN(const uint16_t* dy,
                   RoundGradientToBf16(a.dy, a.rows * a.out, mesh));
  if (a.dx != nullptr) {
    const AccumulateGemmBf16Args product{.a = dy,
                                         .a_row_stride = a.out,
                                         .a_inner_stride = 1,
                                         .b = a.weight.bf16(),
                                         .ldb = a.in,
                                         .c = a.dx,
                                         .ldc = a.in,
                                         .inner = a.out};
    RETURN_IF_ERROR(ForEachDxColumnRange(a, mesh, [&](int64_t k0, int64_t k1) {
      AccumulateGemmBf16(product, 0, a.rows, k0, k1);
    }));
  }
  if (!weight_gradient) return OkStatus();
  ASSIGN_OR_RETURN(const uint16_t* x,
                   RoundActivationsToBf16(a.x, a.rows * a.in, mesh));
  // dW[n, k] += sum_t dy[t, n] x[t, k]: dy read transposed in place.
  const AccumulateGemmBf16Args product{.a = dy,
                                       .a_row_stride = 1,
                                       .a_inner_stride = a.out,
                                       .b = x,
                                       .ldb = a.in,
                                       .c = a.dweight,
                                       .ldc = a.in,
                                       .inner = a.rows};
  return ForEachDwRowRange(a, mesh, [&](int64_t n0, int64_t n1) {
    AccumulateGemmBf16(product, n0, n1, 0, a.in);
  });
}

Status InputGradient(const LinearBackwardArgs& a, Mesh* mesh) {
  // dX[t, k] += sum_n dY[t, n] W[n, k].
  const AccumulateGemmArgs product{.a = a.dy,
                                   .a_row_stride = a.out,
                                   .a_inner_stride = 1,
                                   .b = a.weight.f32(),
                                   .ldb = a.in,
                                   .c = a.dx,
                                   .ldc = a.in,
                                   .inner = a.out};
  const uint16_t* bf16 = a.weight.bf16();
  return ForEachDxColumnRange(a, mesh, [&](int64_t k0, int64_t k1) {
    if (bf16 == nullptr) {
      AccumulateGemm(product, 0, a.rows, k0, k1);
      return;
    }
    // BF16 weights: widen one block of W's columns at a time. An output's
    // arithmetic does not depend on the column range it is computed in
    // (gemm_accumulate.h), so this gives the bits of a float32 W holding
    // the same values.
    for (int64_t b0 = k0; b0 < k1; b0 += kDxColumnBlock) {
      const int64_t b1 = std::min(k1, b0 + kDxColumnBlock);
      AccumulateGemmArgs block = product;
      block.b = WidenBf16Columns(bf16, a.out, a.in, b0, b1);
      block.ldb = b1 - b0;
      block.c = a.dx + b0;
      AccumulateGemm(block, 0, a.rows, 0, b1 - b0);
    }
  });
}

Status WeightGradient(const LinearBackwardArgs& a, Mesh* mesh) {
  // With BF16 weights the forward multiplied the rounded rows of x.
  const float* x = a.x;
  if (a.weight.dtype == DType::kBF16 && a.dweight != nullptr) {
    ASSIGN_OR_RETURN(x, RoundedActivations(a.x, a.rows * a.in, mesh));
  }
  // dW[n, k] += sum_t dY[t, n] X[t, k]: dY read transposed in place.
  const AccumulateGemmArgs product{.a = a.dy,
                                   .a_row_stride = 1,
                                   .a_inner_stride = a.out,
                                   .b = x,
                                   .ldb = a.in,
                                   .c = a.dweight,
                                   .ldc = a.in,
                                   .inner = a.rows};
  return ForEachDwRowRange(a, mesh, [&](int64_t n0, int64_t n1) {
    if (a.dweight != nullptr) AccumulateGemm(product, n0, n1, 0, a.in);
    if (a.dbias != nullptr) {
      AddColumnSums(
          a.rows, n0, n1,
          [&](int64_t t, int64_t n) -> double { return a.dy[t * a.out + n]; },
          a.dbias);
    }
  });
}

}  // namespace

Status LinearBackward(const LinearBackwardArgs& a, Mesh* mesh) {
  if (a.rows < 0 || a.in < 0 || a.out < 0) {
    return InvalidArgumentError("linear backward: negative size");
  }
  RETURN_IF_ERROR(CheckWeightDType(a.weight, MatmulKernel::kRowInvariant));
  if (UsesBf16Products(a)) {
    RETURN_IF_ERROR(Bf16Gradients(a, mesh));
    if (a.dbias == nullptr || a.rows == 0) return OkStatus();
    LinearBackwardArgs bias_only = a;
    bias_only.dweight = nullptr;
    return WeightGradient(bias_only, mesh);
  }
  if (a.dx != nullptr) RETURN_IF_ERROR(InputGradient(a, mesh));
  if (a.rows == 0) return OkStatus();
  if (a.dweight != nullptr || a.dbias != nullptr) {
    RETURN_IF_ERROR(WeightGradient(a, mesh));
  }
  return OkStatus();
}

Status LinearForward(const LinearArgs& a, Mesh* mesh) {
  RETURN_IF_ERROR(CheckWeightDType(a.weight, a.kernel));
  if (a.rows == 0 || a.out == 0) return OkStatus();
  const int64_t ldy = a.ldy == 0 ? a.out : a.ldy;
  // Blocks of 16 columns keep each worker's slice of W cache-line aligned.
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (a.out + kBlock - 1) / kBlock;
  if (a.weight.dtype == DType::kBF16) {
    ASSIGN_OR_RETURN(const uint16_t* x,
                     RoundActivationsToBf16(a.x, a.rows * a.in, mesh));
    const GemmBf16Args gemm{x,      a.rows, a.in, a.weight.bf16(),
                            a.bias, a.y,    ldy,  a.accumulate};
    return ParallelForOrInline(mesh, blocks, [&](const Shard& s) {
      const int64_t n0 = s.begin * kBlock;
      const int64_t n1 = std::min(a.out, s.end * kBlock);
      if (n0 < n1) RowInvariantGemmBf16(gemm, n0, n1);
      return OkStatus();
    });
  }
  const GemmArgs gemm{a.x,    a.rows, a.in, a.weight.f32(),
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
