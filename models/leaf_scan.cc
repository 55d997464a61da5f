#include "models/leaf_scan.h"

#include <immintrin.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>

#include "partition/parallel.h"

namespace rlrt {
namespace {

constexpr size_t kNone = std::numeric_limits<size_t>::max();

// Copies with streaming stores: the destination (hundreds of MB) is not
// read again soon, so it bypasses the cache rather than evicting the source
// chunk the scan is about to read; the caller fences before publishing.
void StreamCopy(std::byte* dst, const std::byte* src, size_t n) {
#if defined(__AVX512F__)
  const size_t misalignment = reinterpret_cast<uintptr_t>(dst) % 64;
  const size_t head = std::min(n, misalignment == 0 ? 0 : 64 - misalignment);
  std::memcpy(dst, src, head);
  dst += head;
  src += head;
  n -= head;
  for (; n >= 64; n -= 64, dst += 64, src += 64) {
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst),
                        _mm512_loadu_si512(src));
  }
  std::memcpy(dst, src, n);
#else
  std::memcpy(dst, src, n);
#endif
}

// With dst null, scans src in place.
StatusOr<LeafScan> Scan(const ParamLeaves& layout, LeafDataFn src,
                        MutableLeafDataFn* dst, const ScanOptions& options,
                        Mesh* mesh) {
  std::array<uint64_t, kMaxMeshSize> hashes{};
  // Per worker, the first chunk (global index) holding a non-finite value:
  // each worker visits its chunks in order, so its first find is its least.
  std::array<size_t, kMaxMeshSize> first_bad;
  first_bad.fill(kNone);
  const Status status = ParallelForOrInline(
      mesh, static_cast<int64_t>(layout.num_chunks()), [&](const Shard& s) {
        uint64_t hash = 0;
        size_t bad = kNone;
        size_t global = static_cast<size_t>(s.begin);
        layout.ForEachChunk(s.begin, s.end, [&](const LeafChunk& c) {
          const std::byte* bytes = src(c.leaf) + c.offset;
          // The scan reads the source chunk, just brought into cache by the
          // copy; the copy is exact, so it describes the destination.
          if (dst != nullptr)
            StreamCopy((*dst)(c.leaf) + c.offset, bytes, c.size);
          if (options.hash) hash += ChunkContentHash(c, bytes);
          if (options.find_non_finite && bad == kNone) {
            const DType dtype = layout.spec(c.leaf).dtype;
            if (AnyNonFinite(dtype, bytes,
                             static_cast<int64_t>(c.size / DTypeSize(dtype))))
              bad = global;
          }
          ++global;
        });
#if defined(__AVX512F__)
        if (dst != nullptr) _mm_sfence();  // Streaming stores, before the join.
#endif
        hashes[s.worker] = hash;
        first_bad[s.worker] = bad;
        return OkStatus();
      });
  RETURN_IF_ERROR(status);
  LeafScan scan;
  if (options.hash) {
    uint64_t sum = 0;
    for (uint64_t h : hashes) sum += h;
    scan.content_hash = FinishContentHash(sum, layout.size());
  }
  size_t bad = kNone;
  for (size_t b : first_bad) bad = std::min(bad, b);
  if (bad != kNone) {
    const LeafChunk c = layout.chunk(bad);
    const DType dtype = layout.spec(c.leaf).dtype;
    const size_t width = DTypeSize(dtype);
    const std::byte* bytes =
        (dst != nullptr ? (*dst)(c.leaf) : src(c.leaf)) + c.offset;
    scan.non_finite = NonFiniteElement{
        c.leaf,
        static_cast<int64_t>(c.offset / width) +
            FirstNonFinite(dtype, bytes, static_cast<int64_t>(c.size / width))};
  }
  return scan;
}

}  // namespace

StatusOr<LeafScan> ScanLeaves(const ParamLeaves& layout, LeafDataFn data,
                              const ScanOptions& options, Mesh* mesh) {
  return Scan(layout, data, nullptr, options, mesh);
}

StatusOr<LeafScan> CopyAndScanLeaves(const ParamLeaves& layout, LeafDataFn src,
                                     MutableLeafDataFn dst,
                                     const ScanOptions& options, Mesh* mesh) {
  return Scan(layout, src, &dst, options, mesh);
}

}  // namespace rlrt
