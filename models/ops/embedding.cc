#include "models/ops/embedding.h"

#include <cstring>

#include "models/parallel.h"

namespace rlrt {

Status EmbeddingForward(const float* table, int64_t dim, const int32_t* ids,
                        int64_t rows, float* out, Mesh* mesh) {
  return ParallelForOrInline(mesh, rows, [&](const Shard& s) {
    for (int64_t t = s.begin; t < s.end; ++t) {
      std::memcpy(out + t * dim, table + static_cast<int64_t>(ids[t]) * dim,
                  dim * sizeof(float));
    }
    return OkStatus();
  });
}

}  // namespace rlrt
