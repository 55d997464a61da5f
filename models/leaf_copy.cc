#include "models/leaf_copy.h"

#include <algorithm>
#include <cstring>

#include "partition/parallel.h"

namespace rlrt {

Status ForEachLeafPiece(const ParamLeaves& layout, Mesh* mesh, LeafPieceFn fn) {
  const size_t total = layout.total_bytes();
  if (total == 0) return OkStatus();
  const std::vector<size_t>& offsets = layout.byte_offsets();
  const int workers = NumWorkers(mesh);
  constexpr size_t kGrain = 4096;
  auto boundary = [&](int64_t k) {
    return k == workers
               ? total
               : std::min(total, total / workers * k / kGrain * kGrain);
  };
  return ParallelForOrInline(mesh, workers, [&](const Shard& s) {
    for (int64_t w = s.begin; w < s.end; ++w) {
      size_t pos = boundary(w);
      const size_t end = boundary(w + 1);
      if (pos >= end) continue;
      // First leaf whose bytes extend past pos.
      size_t leaf = static_cast<size_t>(
          std::upper_bound(offsets.begin(), offsets.end(), pos) -
          offsets.begin() - 1);
      while (pos < end) {
        const size_t n = std::min(end, offsets[leaf + 1]) - pos;
        if (n > 0) fn(leaf, pos - offsets[leaf], n);
        pos += n;
        ++leaf;
      }
    }
    return OkStatus();
  });
}

Status CopyLeafBytes(const ParamLeaves& layout, LeafDataFn src,
                     MutableLeafDataFn dst, Mesh* mesh) {
  return ForEachLeafPiece(
      layout, mesh, [&](size_t leaf, size_t offset, size_t size) {
        std::memcpy(dst(leaf) + offset, src(leaf) + offset, size);
      });
}

}  // namespace rlrt
