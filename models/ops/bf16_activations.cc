#include "models/ops/bf16_activations.h"

#include <algorithm>
#include <vector>

#include "models/dtype.h"
#include "partition/parallel.h"

namespace rlrt {
namespace {

// Below this many elements a conversion runs on the caller: handing it to
// the workers would cost more than it saves (a decode step's rows).
constexpr int64_t kParallelElements = int64_t{1} << 16;
constexpr int64_t kChunkElements = int64_t{1} << 14;

template <typename T>
T* Grow(std::vector<T>& buffer, int64_t count) {
  if (static_cast<int64_t>(buffer.size()) < count) buffer.resize(count);
  return buffer.data();
}

template <typename Fn>
Status ForChunks(int64_t count, Mesh* mesh, Fn&& convert) {
  if (count < kParallelElements || mesh == nullptr) {
    convert(0, count);
    return OkStatus();
  }
  const int64_t chunks = (count + kChunkElements - 1) / kChunkElements;
  return ParallelForOrInline(mesh, chunks, [&](const Shard& s) {
    convert(s.begin * kChunkElements, std::min(count, s.end * kChunkElements));
    return OkStatus();
  });
}

}  // namespace

StatusOr<const uint16_t*> RoundActivationsToBf16(const float* x, int64_t count,
                                                 Mesh* mesh) {
  thread_local std::vector<uint16_t> scratch;
  uint16_t* out = Grow(scratch, count);
  RETURN_IF_ERROR(ForChunks(count, mesh, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = F32ToBf16(x[i]);
  }));
  return static_cast<const uint16_t*>(out);
}

StatusOr<const float*> RoundedActivations(const float* x, int64_t count,
                                          Mesh* mesh) {
  thread_local std::vector<float> scratch;
  float* out = Grow(scratch, count);
  RETURN_IF_ERROR(ForChunks(count, mesh, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = Bf16ToF32(F32ToBf16(x[i]));
  }));
  return static_cast<const float*>(out);
}

Status RoundToBf16InPlace(float* x, int64_t count, Mesh* mesh) {
  return ForChunks(count, mesh, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) x[i] = Bf16ToF32(F32ToBf16(x[i]));
  });
}

StatusOr<Bf16Gradient> RoundGradientToBf16(const float* dy, int64_t rows,
                                           int64_t cols, bool transposed,
                                           Mesh* mesh) {
  thread_local std::vector<uint16_t> by_rows_scratch, by_columns_scratch;
  const int64_t count = rows * cols;
  uint16_t* by_rows = Grow(by_rows_scratch, count);
  RETURN_IF_ERROR(ForChunks(count, mesh, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) by_rows[i] = F32ToBf16(dy[i]);
  }));
  Bf16Gradient result{.by_rows = by_rows};
  if (!transposed) return result;
  uint16_t* by_columns = Grow(by_columns_scratch, count);
  // Square blocks keep both the reads and the writes within a few cache
  // lines per row.
  constexpr int64_t kBlock = 64;
  const auto transpose = [&](int64_t c0, int64_t c1) {
    for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
      const int64_t r1 = std::min(rows, r0 + kBlock);
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r)
          by_columns[c * rows + r] = by_rows[r * cols + c];
      }
    }
  };
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
  if (count < kParallelElements || mesh == nullptr) {
    transpose(0, cols);
  } else {
    RETURN_IF_ERROR(ParallelForOrInline(mesh, blocks, [&](const Shard& s) {
      transpose(s.begin * kBlock, std::min(cols, s.end * kBlock));
      return OkStatus();
    }));
  }
  result.by_columns = by_columns;
  return result;
}

const float* WidenBf16Columns(const uint16_t* w, int64_t rows, int64_t ld,
                              int64_t c0, int64_t c1) {
  thread_local std::vector<float> scratch;
  const int64_t width = c1 - c0;
  float* out = Grow(scratch, rows * width);
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* src = w + r * ld + c0;
    float* dst = out + r * width;
    for (int64_t c = 0; c < width; ++c) dst[c] = Bf16ToF32(src[c]);
  }
  return out;
}

}  // namespace rlrt
