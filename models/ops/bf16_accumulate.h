// Adding float32 partial sums into BF16 storage: the gradients of BF16
// weights are kept in BF16 (half the bytes of float32, as a PyTorch
// parameter's .grad has the parameter's dtype), while every backward kernel
// computes and accumulates in float32. A backward pass gathers one
// parameter's contribution in float32 and adds it here once, so a gradient
// is rounded once per backward pass: after one pass it is exactly the
// float32 gradient rounded to nearest even.
#ifndef RLRT_MODELS_OPS_BF16_ACCUMULATE_H_
#define RLRT_MODELS_OPS_BF16_ACCUMULATE_H_

#include <cstdint>

#include "base/status.h"
#include "partition/mesh.h"

namespace rlrt {

// into[i] = bf16(float(into[i]) + add[i]) for i in [0, count), rounded to
// nearest even (NaN stays NaN). Split across `mesh` when large (inline when
// null); each element's result is independent of the split.
Status AddIntoBf16(const float* add, uint16_t* into, int64_t count, Mesh* mesh);

// The same, and leaves add[0, count) zero, ready to sum the next
// contribution (zeroed while it is still in cache).
Status DrainIntoBf16(float* add, uint16_t* into, int64_t count, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_BF16_ACCUMULATE_H_
