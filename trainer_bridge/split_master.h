// Float32 master weights kept as the BF16 compute copy plus the low 16 bits
// of every value: 4 bytes per parameter where a float32 master beside its
// BF16 copy takes 6 (1.2 GB less for Qwen3-0.6B), and no conversion pass
// after the optimizer step, which writes both halves.
//
// The split is exact. A float32 value with bits u is stored as
//   low  = u & 0xFFFF
//   high = (u >> 16) + (low >= 0x8000)      (the compute copy's BF16 bits)
// and read back as ((high - (low >= 0x8000)) << 16) | low. `high` is u
// rounded to the nearest BF16 value with ties away from zero; converting
// with round-to-nearest-even (ConvertLeaves) breaks a tie toward the even
// neighbour instead, so the two differ only where low is exactly 0x8000 (one
// value in 65,536). Round-to-nearest-even could not be split this way: it
// maps 65,537 float32 values to some BF16 values, one more than 16 low bits
// can tell apart. Infinities are exact; a NaN stays a quiet NaN of its sign
// (its payload is not kept).
//
// Threading: the owner (one learner) calls one method at a time; the work
// of each call is split over a mesh by leaf chunks, writing disjoint ranges.
#ifndef RLRT_TRAINER_BRIDGE_SPLIT_MASTER_H_
#define RLRT_TRAINER_BRIDGE_SPLIT_MASTER_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "base/status.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

struct SplitF32 {
  uint16_t high;
  uint16_t low;
};

inline SplitF32 SplitFloat(float value) {
  const uint32_t u = std::bit_cast<uint32_t>(value);
  if (std::isnan(value)) {
    return {static_cast<uint16_t>((u >> 16) | 0x0040), 0};
  }
  const uint16_t low = static_cast<uint16_t>(u & 0xFFFF);
  return {static_cast<uint16_t>((u >> 16) + (low >= 0x8000 ? 1 : 0)), low};
}

inline float JoinFloat(uint16_t high, uint16_t low) {
  const uint32_t upper = uint32_t{high} - (low >= 0x8000 ? 1u : 0u);
  return std::bit_cast<float>((upper << 16) | low);
}

class SplitMaster {
 public:
  // The master of `compute` (BF16 and F32 leaves), which must outlive this:
  // its BF16 leaves are the high halves, its F32 leaves master values as
  // they are. The low halves start at zero, so the master starts as
  // `compute` widened.
  static StatusOr<SplitMaster> Create(ParamLeaves* compute);

  ParamLeaves& compute() { return *compute_; }
  const ParamLeaves& compute() const { return *compute_; }
  // The low halves of a BF16 leaf; null for an F32 leaf.
  uint16_t* low(size_t leaf) {
    return low_index_[leaf] < 0
               ? nullptr
               : reinterpret_cast<uint16_t*>(low_.data(low_index_[leaf]));
  }
  const uint16_t* low(size_t leaf) const {
    return const_cast<SplitMaster*>(this)->low(leaf);
  }
  // The master's structure: the compute copy's names and shapes, all F32.
  const std::vector<LeafSpec>& master_specs() const { return master_specs_; }

  // Writes the float32 master into `out` (of master_specs()).
  Status CopyTo(ParamLeaves& out, Mesh* mesh) const;
  // Makes `master` (of master_specs()) the master; the compute copy gets its
  // high halves. Nothing changes on a structure mismatch.
  Status Assign(const ParamLeaves& master, Mesh* mesh);
  // A hash of every master bit (compute copy and low halves), equal on two
  // masters exactly when their values are (with overwhelming probability);
  // the same for any worker count.
  uint64_t ContentHash(Mesh* mesh) const;

 private:
  SplitMaster(ParamLeaves* compute, std::vector<LeafSpec> master_specs,
              ParamLeaves low, std::vector<int64_t> low_index)
      : compute_(compute),
        master_specs_(std::move(master_specs)),
        low_(std::move(low)),
        low_index_(std::move(low_index)) {}

  ParamLeaves* compute_;
  std::vector<LeafSpec> master_specs_;
  // The low halves, one 16-bit leaf per BF16 leaf of the compute copy
  // (named after it); low_index_[i] is compute leaf i's, or -1.
  ParamLeaves low_;
  std::vector<int64_t> low_index_;
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_SPLIT_MASTER_H_
