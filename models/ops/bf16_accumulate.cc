#include "models/ops/bf16_accumulate.h"

#include <algorithm>

#include "models/dtype.h"
#include "partition/parallel.h"

namespace rlrt {
namespace {

// Small sums (a norm's weight) run on the caller; a matrix's gradient is
// split in chunks of this many elements.
constexpr int64_t kAccumulateChunk = int64_t{1} << 15;

template <bool kDrain, typename Float>
void AddRange(Float* add, uint16_t* into, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i)
    into[i] = F32ToBf16(Bf16ToF32(into[i]) + add[i]);
  if constexpr (kDrain) std::fill(add + begin, add + end, 0.0f);
}

template <bool kDrain, typename Float>
Status AddSplit(Float* add, uint16_t* into, int64_t count, Mesh* mesh) {
  if (count <= 0) return OkStatus();
  if (add == nullptr || into == nullptr)
    return InvalidArgumentError("adding into BF16 needs both buffers");
  if (count <= kAccumulateChunk || mesh == nullptr) {
    AddRange<kDrain>(add, into, 0, count);
    return OkStatus();
  }
  const int64_t chunks = (count + kAccumulateChunk - 1) / kAccumulateChunk;
  return ParallelForOrInline(mesh, chunks, [&](const Shard& s) {
    AddRange<kDrain>(add, into, s.begin * kAccumulateChunk,
                     std::min(count, s.end * kAccumulateChunk));
    return OkStatus();
  });
}

}  // namespace

Status AddIntoBf16(const float* add, uint16_t* into, int64_t count,
                   Mesh* mesh) {
  return AddSplit<false>(add, into, count, mesh);
}

Status DrainIntoBf16(float* add, uint16_t* into, int64_t count, Mesh* mesh) {
  return AddSplit<true>(add, into, count, mesh);
}

}  // namespace rlrt
