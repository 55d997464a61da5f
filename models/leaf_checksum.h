// Whole-list checksums, as printed by the reference hot-update SOPs:
//  - float64_sum: the sum of every element, accumulated in float64 in a fixed
//    order (per 256 KiB chunk, then chunks in list order), so the value is
//    bit-identical for any number of workers;
//  - content_hash: an exact 64-bit hash of every leaf's bytes (XXH3 per chunk,
//    seeded by the chunk's position, combined in a position-independent way).
//    Equal hashes mean equal bytes (barring 2^-64 accidents), across
//    processes and machines of the same endianness.
// Both can be computed over a foreign payload laid out like a ParamLeaves
// (e.g. the leaves of an incoming UpdateParams), before it touches the list.
#ifndef RLRT_MODELS_LEAF_CHECKSUM_H_
#define RLRT_MODELS_LEAF_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

#include "base/function_ref.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

struct LeafChecksums {
  double float64_sum = 0.0;
  uint64_t content_hash = 0;
};

// Leaf i's bytes; sizes and dtypes are those of the layout's leaf i.
using LeafDataFn = FunctionRef<const std::byte*(size_t leaf)>;

uint64_t ContentHash(const ParamLeaves& layout, LeafDataFn data, Mesh* mesh);
LeafChecksums ComputeChecksums(const ParamLeaves& layout, LeafDataFn data,
                               Mesh* mesh);

// The pieces of ContentHash, for passes that hash while they do something
// else with each chunk (models/leaf_scan.h): the hash of one chunk's bytes,
// summed (mod 2^64, in any order) over every chunk, then finished.
uint64_t ChunkContentHash(const LeafChunk& chunk, const std::byte* bytes);
uint64_t FinishContentHash(uint64_t chunk_hash_sum, size_t num_leaves);

// The same over the list's own contents; mesh may be null (runs inline).
uint64_t ContentHash(const ParamLeaves& leaves, Mesh* mesh = nullptr);
LeafChecksums ComputeChecksums(const ParamLeaves& leaves, Mesh* mesh = nullptr);

}  // namespace rlrt

#endif  // RLRT_MODELS_LEAF_CHECKSUM_H_
