#include "models/leaf_copy.h"

#include <algorithm>
#include <cstring>

#include "models/parallel.h"

namespace rlrt {

Status CopyLeafBytes(const ParamLeaves& layout, LeafDataFn src,
                     MutableLeafDataFn dst, Mesh* mesh) {
  const size_t total = layout.total_bytes();
  if (total == 0) return OkStatus();
  const std::vector<size_t>& offsets = layout.byte_offsets();
  const int workers = NumWorkers(mesh);
  // Range boundaries on 4 KiB so no two workers write the same page.
  constexpr size_t kGrain = 4096;
  return ParallelForOrInline(mesh, workers, [&](const Shard& s) {
    for (int64_t w = s.begin; w < s.end; ++w) {
      auto boundary = [&](int64_t k) {
        const size_t b = total / workers * k / kGrain * kGrain;
        return k == workers ? total : std::min(b, total);
      };
      size_t pos = boundary(w);
      const size_t end = boundary(w + 1);
      if (pos >= end) continue;
      // First leaf whose bytes extend past pos.
      size_t leaf = static_cast<size_t>(
          std::upper_bound(offsets.begin(), offsets.end(), pos) -
          offsets.begin() - 1);
      while (pos < end) {
        const size_t leaf_end = offsets[leaf + 1];
        const size_t n = std::min(end, leaf_end) - pos;
        if (n > 0) {
          const size_t in_leaf = pos - offsets[leaf];
          std::memcpy(dst(leaf) + in_leaf, src(leaf) + in_leaf, n);
        }
        pos += n;
        ++leaf;
      }
    }
    return OkStatus();
  });
}

}  // namespace rlrt
