// Token embedding lookup: out[t] = table[ids[t]]. Ids must be checked
// against the vocabulary by the caller (the forward pass does).
#ifndef RLRT_MODELS_OPS_EMBEDDING_H_
#define RLRT_MODELS_OPS_EMBEDDING_H_

#include <cstdint>

#include "partition/mesh.h"
#include "partition/util/status.h"

namespace rlrt {

Status EmbeddingForward(const float* table, int64_t dim, const int32_t* ids,
                        int64_t rows, float* out, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_EMBEDDING_H_
