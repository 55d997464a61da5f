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

// x[0, count) rounded to BF16 into `scratch`, grown to fit.
StatusOr<const uint16_t*> RoundInto(std::vector<uint16_t>& scratch,
                                    const float* x, int64_t count, Mesh* mesh) {
  uint16_t* out = Grow(scratch, count);
  RETURN_IF_ERROR(ForChunks(count, mesh, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = F32ToBf16(x[i]);
  }));
  return static_cast<const uint16_t*>(out);
}

}  // namespace

StatusOr<const uint16_t*> RoundActivationsToBf16(const float* x, int64_t count,
                                                 Mesh* mesh) {
  thread_local std::vector<uint16_t> scratch;
  return RoundInto(scratch, x, count, mesh);
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

StatusOr<const uint16_t*> RoundGradientToBf16(const float* dy, int64_t count,
                                              Mesh* mesh) {
  thread_local std::vector<uint16_t> scratch;
  return RoundInto(scratch, dy, count, mesh);
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
