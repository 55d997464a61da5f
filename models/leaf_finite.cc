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

// Whether any element in [begin, end) is non-finite. F32, the common case,
// is one branch-free pass the compiler vectorises (the data may be
// unaligned, as a protobuf payload is, hence memcpy per element).
bool AnyNonFinite(DType dtype, const std::byte* data, int64_t begin,
                  int64_t end) {
  const size_t width = DTypeSize(dtype);
  if (dtype == DType::kF32) {
    bool any = false;
    for (int64_t k = begin; k < end; ++k) {
      uint32_t bits;
      std::memcpy(&bits, data + k * 4, 4);
      any |= ((bits >> 23) & 0xff) == 0xff;
    }
    return any;
  }
  for (int64_t k = begin; k < end; ++k)
    if (NonFinite(dtype, data + k * width)) return true;
  return false;
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
        if (AnyNonFinite(dtype, bytes, shard.begin, shard.end))
          found.store(true, std::memory_order_relaxed);
        return OkStatus();
      });
      any = !s.ok() || found.load();
    } else {
      any = AnyNonFinite(dtype, bytes, 0, n);
    }
    if (!any) continue;
    // Rare: locate the first one serially.
    const size_t width = DTypeSize(dtype);
    for (int64_t k = 0; k < n; ++k)
      if (NonFinite(dtype, bytes + k * width)) return NonFiniteElement{i, k};
  }
  return std::nullopt;
}

std::optional<NonFiniteElement> FindNonFinite(const ParamLeaves& leaves,
                                              Mesh* mesh) {
  return FindNonFinite(
      leaves, [&](size_t i) { return leaves.data(i); }, mesh);
}

}  // namespace rlrt
