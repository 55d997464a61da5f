#include "models/leaf_scan.h"

#include <immintrin.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>

#include "models/leaf_finite.h"
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

// Copies as StreamCopy and tells whether the copied values hold a value
// that is not finite in `dtype`, checking the registers the copy loaded
// (a max of magnitudes per lane) rather than reading the chunk again.
bool StreamCopyFindingNonFinite(std::byte* dst, const std::byte* src, size_t n,
                                DType dtype) {
  const size_t width = DTypeSize(dtype);
#if defined(__AVX512F__) && defined(__AVX512BW__)
  const size_t misalignment = reinterpret_cast<uintptr_t>(dst) % 64;
  const size_t head = std::min(n, misalignment == 0 ? 0 : 64 - misalignment);
  if (head % width != 0) {  // Lanes would straddle elements.
    StreamCopy(dst, src, n);
    return AnyNonFinite(dtype, src, static_cast<int64_t>(n / width));
  }
  bool bad = AnyNonFinite(dtype, src, static_cast<int64_t>(head / width));
  std::memcpy(dst, src, head);
  dst += head;
  src += head;
  n -= head;
  __m512i largest = _mm512_setzero_si512();
  if (width == 4) {
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    for (; n >= 64; n -= 64, dst += 64, src += 64) {
      const __m512i v = _mm512_loadu_si512(src);
      _mm512_stream_si512(reinterpret_cast<__m512i*>(dst), v);
      // The maskz form: GCC 12 warns on the plain one's undefined source.
      largest = _mm512_maskz_max_epu32(__mmask16(0xffff), largest,
                                       _mm512_and_si512(v, magnitude));
    }
    bad = bad ||
          _mm512_cmpge_epu32_mask(largest, _mm512_set1_epi32(0x7f800000)) != 0;
  } else {
    const __m512i magnitude = _mm512_set1_epi16(0x7fff);
    for (; n >= 64; n -= 64, dst += 64, src += 64) {
      const __m512i v = _mm512_loadu_si512(src);
      _mm512_stream_si512(reinterpret_cast<__m512i*>(dst), v);
      largest = _mm512_maskz_max_epu16(__mmask32(0xffffffff), largest,
                                       _mm512_and_si512(v, magnitude));
    }
    const short limit = dtype == DType::kBF16 ? 0x7f80 : 0x7c00;
    bad =
        bad || _mm512_cmpge_epu16_mask(largest, _mm512_set1_epi16(limit)) != 0;
  }
  bad = bad || AnyNonFinite(dtype, src, static_cast<int64_t>(n / width));
  std::memcpy(dst, src, n);
  return bad;
#else
  StreamCopy(dst, src, n);
  return AnyNonFinite(dtype, src, static_cast<int64_t>(n / width));
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
          const DType dtype = layout.spec(c.leaf).dtype;
          const bool check = options.find_non_finite && bad == kNone;
          // The copy checks what it loads; the hash reads the source chunk
          // it just brought into cache. The copy is exact, so both describe
          // the destination.
          if (dst != nullptr) {
            std::byte* to = (*dst)(c.leaf) + c.offset;
            if (check) {
              if (StreamCopyFindingNonFinite(to, bytes, c.size, dtype))
                bad = global;
            } else {
              StreamCopy(to, bytes, c.size);
            }
          } else if (check && AnyNonFinite(dtype, bytes,
                                           static_cast<int64_t>(
                                               c.size / DTypeSize(dtype)))) {
            bad = global;
          }
          if (options.hash) hash += ChunkContentHash(c, bytes);
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
