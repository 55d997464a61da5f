#include "models/leaf_checksum.h"

#include <glog/logging.h>

#include <array>

#include "models/hash.h"
#include "partition/parallel.h"

namespace rlrt {
namespace {

uint64_t ChunkSeed(const LeafChunk& c) {
  return (static_cast<uint64_t>(c.leaf) << 32) ^ c.index_in_leaf ^
         0x9e3779b97f4a7c15ull;
}

// Sums a chunk in float64 with eight interleaved accumulators (a fixed order,
// so the result is reproducible, and independent lanes the compiler can
// vectorise).
double SumChunk(const std::byte* bytes, size_t size, DType dtype) {
  const size_t n = size / DTypeSize(dtype);
  std::array<double, 8> lanes{};
  size_t i = 0;
  if (dtype == DType::kF32) {
    const float* f = reinterpret_cast<const float*>(bytes);
    for (; i + 8 <= n; i += 8) {
      for (size_t l = 0; l < 8; ++l) lanes[l] += static_cast<double>(f[i + l]);
    }
  } else {
    for (; i + 8 <= n; i += 8) {
      for (size_t l = 0; l < 8; ++l) {
        lanes[l] += static_cast<double>(LoadAsF32(bytes, dtype, i + l));
      }
    }
  }
  for (size_t l = 0; i < n; ++i, ++l) {
    lanes[l] += static_cast<double>(LoadAsF32(bytes, dtype, i));
  }
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
         ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// Hashes (and optionally sums into the layout's scratch) every chunk.
uint64_t HashAndMaybeSum(const ParamLeaves& layout, LeafDataFn data, Mesh* mesh,
                         bool sum) {
  std::array<uint64_t, kMaxMeshSize> partial{};
  std::span<double> sums = layout.chunk_scratch();
  Status status = ParallelForOrInline(
      mesh, static_cast<int64_t>(layout.num_chunks()), [&](const Shard& s) {
        // One read of each chunk serves both the hash and the sum.
        uint64_t acc = 0;
        size_t global = static_cast<size_t>(s.begin);
        layout.ForEachChunk(s.begin, s.end, [&](const LeafChunk& c) {
          const std::byte* bytes = data(c.leaf) + c.offset;
          acc += ChunkContentHash(c, bytes);
          if (sum)
            sums[global] = SumChunk(bytes, c.size, layout.spec(c.leaf).dtype);
          ++global;
        });
        partial[s.worker] = acc;
        return OkStatus();
      });
  CHECK(status.ok()) << status;
  uint64_t acc = 0;
  for (uint64_t p : partial) acc += p;
  return FinishContentHash(acc, layout.size());
}

}  // namespace

uint64_t ChunkContentHash(const LeafChunk& chunk, const std::byte* bytes) {
  return HashBytes(bytes, chunk.size, ChunkSeed(chunk));
}

uint64_t FinishContentHash(uint64_t chunk_hash_sum, size_t num_leaves) {
  return HashBytes(&chunk_hash_sum, sizeof(chunk_hash_sum), num_leaves);
}

uint64_t ContentHash(const ParamLeaves& layout, LeafDataFn data, Mesh* mesh) {
  return HashAndMaybeSum(layout, data, mesh, /*sum=*/false);
}

LeafChecksums ComputeChecksums(const ParamLeaves& layout, LeafDataFn data,
                               Mesh* mesh) {
  std::lock_guard<std::mutex> lock(layout.scratch_mutex());
  LeafChecksums out;
  out.content_hash = HashAndMaybeSum(layout, data, mesh, /*sum=*/true);
  for (double s : layout.chunk_scratch()) out.float64_sum += s;
  return out;
}

uint64_t ContentHash(const ParamLeaves& leaves, Mesh* mesh) {
  return ContentHash(
      leaves, [&](size_t i) { return leaves.data(i); }, mesh);
}

LeafChecksums ComputeChecksums(const ParamLeaves& leaves, Mesh* mesh) {
  return ComputeChecksums(
      leaves, [&](size_t i) { return leaves.data(i); }, mesh);
}

}  // namespace rlrt
