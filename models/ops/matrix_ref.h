// A read-only weight matrix as it is stored: float32, or BF16 bit patterns.
// The ops that read weights (linear, embedding) take one, so a leaf list of
// either dtype runs through the same decoder code.
#ifndef RLRT_MODELS_OPS_MATRIX_REF_H_
#define RLRT_MODELS_OPS_MATRIX_REF_H_

#include <cstdint>

#include "models/dtype.h"

namespace rlrt {

struct MatrixRef {
  const void* data = nullptr;
  DType dtype = DType::kF32;

  MatrixRef() = default;
  // Implicit on purpose: a float pointer is a float32 matrix, so callers
  // with float32 weights read as they always have.
  MatrixRef(const float* f32) : data(f32) {}  // NOLINT(runtime/explicit)
  static MatrixRef Bf16(const uint16_t* bits) {
    MatrixRef m;
    m.data = bits;
    m.dtype = DType::kBF16;
    return m;
  }

  const float* f32() const {
    return dtype == DType::kF32 ? static_cast<const float*>(data) : nullptr;
  }
  const uint16_t* bf16() const {
    return dtype == DType::kBF16 ? static_cast<const uint16_t*>(data) : nullptr;
  }
};

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_MATRIX_REF_H_
