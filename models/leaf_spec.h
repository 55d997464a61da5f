// The structure of a parameter leaf list: names, shapes and dtypes in order,
// the C++ counterpart of a flattened JAX pytree's treedef plus avals. Two leaf
// lists are interchangeable exactly when their structures are equal, which
// the fingerprint summarises in 64 bits.
#ifndef RLRT_MODELS_LEAF_SPEC_H_
#define RLRT_MODELS_LEAF_SPEC_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/dtype.h"

namespace rlrt {

struct LeafSpec {
  std::string name;  // Hugging Face tensor name, e.g. "model.norm.weight".
  std::vector<int64_t> shape;
  DType dtype = DType::kF32;

  int64_t NumElements() const;
  size_t NumBytes() const { return NumElements() * DTypeSize(dtype); }
  friend bool operator==(const LeafSpec&, const LeafSpec&) = default;
};

std::string ShapeToString(std::span<const int64_t> shape);  // "[2, 3]"

// Checks one leaf on its own: non-empty name, non-negative dims, and an
// element count whose byte size fits in memory (no overflow).
Status ValidateLeafSpec(const LeafSpec& spec);

// Streams (name, shape, dtype) triples into a 64-bit structure fingerprint.
// Works straight from any representation (leaf specs, protobuf messages)
// without building intermediate objects, so checking an incoming update
// allocates nothing.
class FingerprintBuilder {
 public:
  void Add(std::string_view name, std::span<const int64_t> shape, DType dtype);
  uint64_t Finish() const;

 private:
  uint64_t chain_ = 0x5eed5eed5eed5eedull;  // Hash of everything added so far.
  uint64_t count_ = 0;
};

uint64_t StructureFingerprint(std::span<const LeafSpec> specs);

// A readable account of how `actual` differs from `expected`, one difference
// per line (first `max_lines` of them), e.g.
//   leaf 3 'model.layers.0.mlp.up_proj.weight': shape [64, 32] != [64, 16]
//   missing leaf 7 'lm_head.weight' (F32 [256, 32])
// Empty when the structures are equal.
std::string DiffStructures(std::span<const LeafSpec> expected,
                           std::span<const LeafSpec> actual,
                           size_t max_lines = 8);

}  // namespace rlrt

#endif  // RLRT_MODELS_LEAF_SPEC_H_
