#include "models/param_leaves.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace rlrt {

StatusOr<ParamLeaves> ParamLeaves::Allocate(std::vector<LeafSpec> specs) {
  ParamLeaves leaves;
  leaves.index_.reserve(specs.size());
  leaves.bytes_.reserve(specs.size());
  leaves.byte_offsets_.reserve(specs.size() + 1);
  leaves.chunk_offsets_.reserve(specs.size() + 1);
  leaves.byte_offsets_.push_back(0);
  leaves.chunk_offsets_.push_back(0);
  std::vector<size_t> arena_offsets;
  arena_offsets.reserve(specs.size());
  size_t arena_bytes = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const LeafSpec& s = specs[i];
    RETURN_IF_ERROR(
        ValidateLeafSpec(s).WithContext("leaf " + std::to_string(i)));
    if (!leaves.index_.emplace(s.name, i).second) {
      return InvalidArgumentError("duplicate leaf name '" + s.name + "' at " +
                                  std::to_string(i));
    }
    const size_t n = s.NumBytes();
    leaves.bytes_.push_back(n);
    leaves.total_bytes_ += n;
    leaves.total_elements_ += s.NumElements();
    leaves.byte_offsets_.push_back(leaves.total_bytes_);
    leaves.chunk_offsets_.push_back(leaves.chunk_offsets_.back() +
                                    (n + kLeafChunkBytes - 1) /
                                        kLeafChunkBytes);
    arena_offsets.push_back(arena_bytes);
    arena_bytes += (n + kLeafAlignment - 1) / kLeafAlignment * kLeafAlignment;
  }
  ASSIGN_OR_RETURN(leaves.arena_, PageArena::Create(arena_bytes));
  leaves.data_.reserve(specs.size());
  for (size_t offset : arena_offsets) {
    leaves.data_.push_back(leaves.arena_.data() + offset);
  }
  leaves.fingerprint_ = StructureFingerprint(specs);
  leaves.specs_ = std::move(specs);
  leaves.scratch_mu_ = std::make_unique<std::mutex>();
  leaves.chunk_scratch_ =
      std::make_unique<std::vector<double>>(leaves.chunk_offsets_.back());
  return leaves;
}

ParamLeaves::ParamLeaves(ParamLeaves&&) noexcept = default;
ParamLeaves& ParamLeaves::operator=(ParamLeaves&&) noexcept = default;

std::span<float> ParamLeaves::F32(size_t i) {
  assert(specs_[i].dtype == DType::kF32);
  return {reinterpret_cast<float*>(data_[i]), bytes_[i] / sizeof(float)};
}

std::span<const float> ParamLeaves::F32(size_t i) const {
  assert(specs_[i].dtype == DType::kF32);
  return {reinterpret_cast<const float*>(data_[i]), bytes_[i] / sizeof(float)};
}

std::optional<size_t> ParamLeaves::Find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

LeafChunk ParamLeaves::chunk(size_t global_index) const {
  assert(global_index < num_chunks());
  // The leaf is the last one whose first chunk is at or before the index;
  // leaves without chunks share their successor's offset and are skipped.
  auto it = std::upper_bound(chunk_offsets_.begin(), chunk_offsets_.end(),
                             global_index);
  const size_t leaf = static_cast<size_t>(it - chunk_offsets_.begin()) - 1;
  LeafChunk c;
  c.leaf = leaf;
  c.index_in_leaf = global_index - chunk_offsets_[leaf];
  c.offset = c.index_in_leaf * kLeafChunkBytes;
  c.size = std::min(kLeafChunkBytes, bytes_[leaf] - c.offset);
  return c;
}

}  // namespace rlrt
