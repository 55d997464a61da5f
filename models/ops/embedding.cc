#include "models/ops/embedding.h"

#include <cstring>

#include "partition/parallel.h"

namespace rlrt {

Status EmbeddingForward(MatrixRef table, int64_t dim, const int32_t* ids,
                        int64_t rows, float* out, Mesh* mesh) {
  if (table.dtype != DType::kF32 && table.dtype != DType::kBF16) {
    return InvalidArgumentError("embedding: the table must be float32 or BF16");
  }
  return ParallelForOrInline(mesh, rows, [&](const Shard& s) {
    for (int64_t t = s.begin; t < s.end; ++t) {
      const int64_t row = static_cast<int64_t>(ids[t]) * dim;
      float* dst = out + t * dim;
      if (const float* f32 = table.f32()) {
        std::memcpy(dst, f32 + row, dim * sizeof(float));
      } else {
        const uint16_t* src = table.bf16() + row;
        for (int64_t i = 0; i < dim; ++i) dst[i] = Bf16ToF32(src[i]);
      }
    }
    return OkStatus();
  });
}

Status EmbeddingBackward(const float* d_out, int64_t dim, const int32_t* ids,
                         int64_t rows, float* d_table, int64_t vocab,
                         Mesh* mesh) {
  return ParallelForOrInline(mesh, vocab, [&](const Shard& s) {
    for (int64_t t = 0; t < rows; ++t) {
      const int64_t id = ids[t];
      if (id < s.begin || id >= s.end) continue;
      float* row = d_table + id * dim;
      const float* grad = d_out + t * dim;
      for (int64_t i = 0; i < dim; ++i) row[i] += grad[i];
    }
    return OkStatus();
  });
}

}  // namespace rlrt
