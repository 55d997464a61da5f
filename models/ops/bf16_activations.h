// Where float32 activations meet BF16 weights (see models/ops/linear.h).
//
// RoundActivationsToBf16 is the single place the decoder rounds a matmul
// input to BF16: round to nearest even, as PyTorch's .to(bfloat16) does.
// RoundToBf16InPlace is the other rounding, of keys and values headed for
// a BF16 KV cache (models/decoder/decoder_layer.h). The backward forms dW from
// RoundedActivations, the same values widened back to float32, so the gradient
// is that of the product the forward computed.
//
// Scratch: results live in buffers owned by the calling thread, reused
// (and grown, never shrunk) by its next call of the same function, so a
// steady stream of calls allocates nothing. A result is valid until that
// next call on the same thread.
#ifndef RLRT_MODELS_OPS_BF16_ACTIVATIONS_H_
#define RLRT_MODELS_OPS_BF16_ACTIVATIONS_H_

#include <cstdint>

#include "base/status.h"
#include "partition/mesh.h"

namespace rlrt {

// x[0, count) rounded to BF16 bit patterns; the conversion is split across
// `mesh` when it is large (inline when null).
StatusOr<const uint16_t*> RoundActivationsToBf16(const float* x, int64_t count,
                                                 Mesh* mesh);

// x[0, count) rounded to BF16 and widened back (exactly) to float32.
StatusOr<const float*> RoundedActivations(const float* x, int64_t count,
                                          Mesh* mesh);

// x[0, count) replaced by its values rounded to BF16 (still float32).
Status RoundToBf16InPlace(float* x, int64_t count, Mesh* mesh);

// dLoss/dy[0, count) rounded to BF16 for the backward's BF16 products
// (models/ops/linear.h), in a buffer of the calling thread apart from
// RoundActivationsToBf16's, so both can be alive at once.
StatusOr<const uint16_t*> RoundGradientToBf16(const float* dy, int64_t count,
                                              Mesh* mesh);

// Columns [c0, c1) of the BF16 matrix w[rows, ld], widened to float32 into
// a [rows, c1 - c0] row-major buffer of the calling thread.
const float* WidenBf16Columns(const uint16_t* w, int64_t rows, int64_t ld,
                              int64_t c0, int64_t c1);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_BF16_ACTIVATIONS_H_
