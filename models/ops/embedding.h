// Token embedding lookup and its gradient.
//   forward:  out[t] = table[ids[t]] (a BF16 table's rows widened exactly)
//   backward: d_table[ids[t]] += d_out[t] for every row t
// Shapes: table, d_table [vocab, dim]; ids [rows]; out, d_out [rows, dim].
// Ids must be checked against the vocabulary by the caller (the forward
// passes do).
#ifndef RLRT_MODELS_OPS_EMBEDDING_H_
#define RLRT_MODELS_OPS_EMBEDDING_H_

#include <cstdint>

#include "base/status.h"
#include "models/ops/matrix_ref.h"
#include "partition/mesh.h"

namespace rlrt {

Status EmbeddingForward(MatrixRef table, int64_t dim, const int32_t* ids,
                        int64_t rows, float* out, Mesh* mesh);

// A scatter-add. Workers own disjoint ranges of table rows and each scans
// every id, so no two write the same row, and a row receives its tokens'
// gradients in row order whatever the worker count (bitwise reproducible).
// Scanning the ids once per worker costs O(rows * workers), negligible next
// to the additions.
Status EmbeddingBackward(const float* d_out, int64_t dim, const int32_t* ids,
                         int64_t rows, float* d_table, int64_t vocab,
                         Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_EMBEDDING_H_
