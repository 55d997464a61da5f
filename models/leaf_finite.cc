#include "models/leaf_finite.h"

#include <atomic>
#include <cstring>

#include "partition/parallel.h"

namespace rlrt {
namespace {

// Leaves with fewer elements are scanned by the caller alone: a dispatch to
// the mesh costs more than the scan.
constexpr int64_t kParallelElements = int64_t{1} << 20;

// True when the element's exponent bits are all ones (NaN or infinity).
bool NonFinite(DType dtype, const std::byte* p) {
  switch (dtype) {
    case DType::kF32: {
      uint32_t bits;
      std::memcpy(&bits, p, 4);
      return ((bits >> 23) & 0xff) == 0xff;
    }
    case DType::kBF16: {
      uint16_t bits;
      std::memcpy(&bits, p, 2);
      return ((bits >> 7) & 0xff) == 0xff;
    }
    case DType::kF16: {
      uint16_t bits;
      std::memcpy(&bits, p, 2);
      return ((bits >> 10) & 0x1f) == 0x1f;
    }
  }
  return false;
}

// The largest magnitude bit pattern (sign cleared) among `count` elements:
// an element is NaN or infinite exactly when its magnitude
// bits are at least those of infinity. A max reduction is branch-free and
// the compiler vectorises it (the data may be unaligned, as a protobuf
// payload is, hence memcpy per element).
template <typename Bits>
Bits MaxMagnitude(const std::byte* data, int64_t count, Bits magnitude_mask) {
  Bits most = 0;
  for (int64_t k = 0; k < count; ++k) {
    Bits bits;
    std::memcpy(&bits, data + k * sizeof(Bits), sizeof(Bits));
    bits &= magnitude_mask;
    most = bits > most ? bits : most;
  }
  return most;
}

}  // namespace

std::optional<NonFiniteElement> FindNonFinite(const ParamLeaves& layout,
                                              LeafDataFn data, Mesh* mesh) {
  for (size_t i = 0; i < layout.size(); ++i) {
    const DType dtype = layout.spec(i).dtype;
    const std::byte* bytes = data(i);
    const int64_t n = static_cast<int64_t>(layout.bytes(i) / DTypeSize(dtype));
    bool any = false;
    if (n >= kParallelElements && mesh != nullptr) {
      std::atomic<bool> found{false};
      const Status s = mesh->ParallelFor(n, [&](const Shard& shard) {
        if (AnyNonFinite(dtype, bytes + shard.begin * DTypeSize(dtype),
                         shard.end - shard.begin))
          found.store(true, std::memory_order_relaxed);
        return OkStatus();
      });
      any = !s.ok() || found.load();
    } else {
      any = AnyNonFinite(dtype, bytes, n);
    }
    if (!any) continue;
    // Rare: locate the first one serially.
    return NonFiniteElement{i, FirstNonFinite(dtype, bytes, n)};
  }
  return std::nullopt;
}

bool AnyNonFinite(DType dtype, const std::byte* data, int64_t count) {
  switch (dtype) {
    case DType::kF32:
      return MaxMagnitude<uint32_t>(data, count, 0x7fffffffu) >= 0x7f800000u;
    case DType::kBF16:
      return MaxMagnitude<uint16_t>(data, count, 0x7fff) >= 0x7f80;
    case DType::kF16:
      return MaxMagnitude<uint16_t>(data, count, 0x7fff) >= 0x7c00;
  }
  return false;
}

int64_t FirstNonFinite(DType dtype, const std::byte* data, int64_t count) {
  const size_t width = DTypeSize(dtype);
  for (int64_t k = 0; k < count; ++k)
    if (NonFinite(dtype, data + k * width)) return k;
  return -1;
}

std::optional<NonFiniteElement> FindNonFinite(const ParamLeaves& leaves,
                                              Mesh* mesh) {
  return FindNonFinite(
      leaves, [&](size_t i) { return leaves.data(i); }, mesh);
}

}  // namespace rlrt
