// Rotary position embedding in Hugging Face's rotate-half layout: dimension
// i of a head pairs with i + head_dim/2, at angle position * theta^(-2i/d).
//   out[i]        = x[i] cos - x[i + d/2] sin
//   out[i + d/2]  = x[i + d/2] cos + x[i] sin        (i < d/2)
// Angles are computed in double and rounded once, so the tables stay exact
// to float precision at every position (HF computes them in float32, which
// loses ~1e-3 rad at 40k positions; both our sampler and trainer use this).
#ifndef RLRT_MODELS_OPS_ROPE_H_
#define RLRT_MODELS_OPS_ROPE_H_

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "partition/mesh.h"

namespace rlrt {

// theta^(-2i/head_dim) for i < head_dim/2: fixed per model, computed once.
std::vector<double> RopeInverseFrequencies(int64_t head_dim, double theta);

// cos/sin tables [rows, head_dim/2] for the given positions.
void RopeTables(const int32_t* positions, int64_t rows,
                const std::vector<double>& inv_freq, float* cos_out,
                float* sin_out);

// Rotates x [rows, heads * head_dim] in place; row r uses table row r.
Status RopeForward(float* x, int64_t rows, int64_t heads, int64_t head_dim,
                   const float* cos_table, const float* sin_table, Mesh* mesh);

// The gradient of RopeForward: a rotation is orthogonal, so dx is dy rotated
// back by the same angle (the transpose), in place:
//   dx[i]       = dy[i] cos + dy[i + d/2] sin
//   dx[i + d/2] = dy[i + d/2] cos - dy[i] sin
Status RopeBackward(float* dy, int64_t rows, int64_t heads, int64_t head_dim,
                    const float* cos_table, const float* sin_table, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_ROPE_H_
