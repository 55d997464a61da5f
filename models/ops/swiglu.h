// SwiGLU activation of the MLP and its gradient:
//   out = silu(gate) * up,  silu(g) = g * s(g),  s(g) = 1 / (1 + e^-g)
//   d_gate = d_out * up * s(g) * (1 + g * (1 - s(g)))
//   d_up   = d_out * silu(g)
// Shapes: every array [n]. Elementwise, so out may alias gate, d_gate may
// alias gate or d_out, and d_up may alias up.
#ifndef RLRT_MODELS_OPS_SWIGLU_H_
#define RLRT_MODELS_OPS_SWIGLU_H_

#include <cstdint>

#include "base/status.h"
#include "partition/mesh.h"

namespace rlrt {

Status SwigluForward(const float* gate, const float* up, float* out, int64_t n,
                     Mesh* mesh);

Status SwigluBackward(const float* gate, const float* up, const float* d_out,
                      float* d_gate, float* d_up, int64_t n, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_SWIGLU_H_
