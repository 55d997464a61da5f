#include "models/leaf_copy.h"

#include <algorithm>
#include <cstring>
#include <string>

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

Status ForEachLeafChunk(const ParamLeaves& layout, Mesh* mesh, LeafChunkFn fn) {
  return ParallelForOrInline(mesh, static_cast<int64_t>(layout.num_chunks()),
                             [&](const Shard& s) {
                               layout.ForEachChunk(s.begin, s.end, fn);
                               return OkStatus();
                             });
}

Status ConvertLeaves(const ParamLeaves& from, ParamLeaves& to, Mesh* mesh) {
  if (from.size() != to.size()) {
    return InvalidArgumentError("cannot convert " +
                                std::to_string(from.size()) + " leaves into " +
                                std::to_string(to.size()));
  }
  for (size_t i = 0; i < to.size(); ++i) {
    if (from.spec(i).name != to.spec(i).name ||
        from.spec(i).shape != to.spec(i).shape) {
      return InvalidArgumentError(
          "leaf " + std::to_string(i) + " ('" + from.spec(i).name +
          "') differs in name or shape from '" + to.spec(i).name + "'");
    }
  }
  return ForEachLeafChunk(to, mesh, [&](const LeafChunk& c) {
    const DType out = to.spec(c.leaf).dtype;
    const DType in = from.spec(c.leaf).dtype;
    const size_t first = c.offset / DTypeSize(out);
    const size_t count = c.size / DTypeSize(out);
    std::byte* dst = to.data(c.leaf);
    const std::byte* src = from.data(c.leaf);
    if (in == out) {
      std::memcpy(dst + c.offset, src + c.offset, c.size);
    } else if (in == DType::kF32 && out == DType::kBF16) {
      const float* f = reinterpret_cast<const float*>(src) + first;
      uint16_t* b = reinterpret_cast<uint16_t*>(dst) + first;
      for (size_t k = 0; k < count; ++k) b[k] = F32ToBf16(f[k]);
    } else {
      for (size_t k = first; k < first + count; ++k) {
        StoreFromF32(dst, out, k, LoadAsF32(src, in, k));
      }
    }
  });
}

}  // namespace rlrt
