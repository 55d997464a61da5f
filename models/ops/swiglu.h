// SwiGLU activation of the MLP: out = silu(gate) * up, silu(g) = g / (1 +
// e^-g). Shapes: gate, up, out [n] (out may alias gate).
#ifndef RLRT_MODELS_OPS_SWIGLU_H_
#define RLRT_MODELS_OPS_SWIGLU_H_

#include <cstdint>

#include "partition/mesh.h"
#include "partition/util/status.h"

namespace rlrt {

Status SwigluForward(const float* gate, const float* up, float* out, int64_t n,
                     Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_SWIGLU_H_
