// ParamLeaves: the flat, ordered list of a model's parameter leaves, each a
// named, shaped, typed, contiguous 64-byte-aligned buffer. Its structure is
// fixed at creation; contents change in place (loads, optimizer steps,
// UpdateParams), never by reallocation, so kernels may hold leaf pointers
// across weight updates.
//
// Thread-safety: const methods may run concurrently; writers of leaf contents
// need external synchronisation with readers (the sampler engine applies
// updates between decode steps for exactly this reason).
#ifndef RLRT_MODELS_PARAM_LEAVES_H_
#define RLRT_MODELS_PARAM_LEAVES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "models/leaf_spec.h"
#include "models/page_arena.h"

namespace rlrt {

// Whole-list passes (hashing, sums, init) walk leaves in chunks of this many
// bytes. Chunks never span leaves, so results do not depend on how many
// workers share the pass.
inline constexpr size_t kLeafChunkBytes = size_t{256} << 10;
inline constexpr size_t kLeafAlignment = 64;

// One chunk of a leaf: bytes [offset, offset + size) of leaf `leaf`;
// `index_in_leaf` numbers the chunks of that leaf from 0.
struct LeafChunk {
  size_t leaf = 0;
  size_t offset = 0;
  size_t size = 0;
  size_t index_in_leaf = 0;
};

class ParamLeaves {
 public:
  // Validates the specs (each leaf valid, names unique) and allocates one
  // zero-filled arena holding every leaf, each aligned to kLeafAlignment.
  static StatusOr<ParamLeaves> Allocate(std::vector<LeafSpec> specs);

  ParamLeaves(ParamLeaves&&) noexcept;
  ParamLeaves& operator=(ParamLeaves&&) noexcept;
  ParamLeaves(const ParamLeaves&) = delete;
  ParamLeaves& operator=(const ParamLeaves&) = delete;

  size_t size() const { return specs_.size(); }
  const std::vector<LeafSpec>& specs() const { return specs_; }
  const LeafSpec& spec(size_t i) const { return specs_[i]; }
  std::byte* data(size_t i) { return data_[i]; }
  const std::byte* data(size_t i) const { return data_[i]; }
  size_t bytes(size_t i) const { return bytes_[i]; }
  // The leaf as floats; the leaf must be F32.
  std::span<float> F32(size_t i);
  std::span<const float> F32(size_t i) const;

  std::optional<size_t> Find(std::string_view name) const;

  size_t total_bytes() const { return total_bytes_; }
  int64_t total_elements() const { return total_elements_; }
  // Exclusive prefix sums of leaf byte sizes (size()+1 entries), for
  // splitting a pass over all bytes into equal contiguous ranges.
  const std::vector<size_t>& byte_offsets() const { return byte_offsets_; }

  size_t num_chunks() const { return chunk_offsets_.back(); }
  LeafChunk chunk(size_t global_index) const;
  // Calls fn(chunk) for the global chunks [begin, end), in order.
  template <typename Fn>
  void ForEachChunk(size_t begin, size_t end, Fn&& fn) const;

  // StructureFingerprint(specs()), computed once at creation.
  uint64_t fingerprint() const { return fingerprint_; }

  // The weights version these contents represent (0 = initial). Set by
  // whoever changes the contents: an optimizer step, an applied update.
  uint64_t version() const { return version_; }
  void set_version(uint64_t version) { version_ = version; }

  // Per-chunk scratch for order-fixed reductions (see leaf_checksum.h),
  // guarded by scratch_mutex().
  std::mutex& scratch_mutex() const { return *scratch_mu_; }
  std::span<double> chunk_scratch() const { return *chunk_scratch_; }

 private:
  ParamLeaves() = default;

  std::vector<LeafSpec> specs_;
  std::vector<std::byte*> data_;
  std::vector<size_t> bytes_;
  std::vector<size_t> byte_offsets_;
  std::vector<size_t> chunk_offsets_;  // size()+1 prefix sums of chunk counts.
  std::unordered_map<std::string, size_t> index_;
  PageArena arena_;
  size_t total_bytes_ = 0;
  int64_t total_elements_ = 0;
  uint64_t fingerprint_ = 0;
  uint64_t version_ = 0;
  std::unique_ptr<std::mutex> scratch_mu_;
  std::unique_ptr<std::vector<double>> chunk_scratch_;
};

template <typename Fn>
void ParamLeaves::ForEachChunk(size_t begin, size_t end, Fn&& fn) const {
  if (begin >= end) return;
  LeafChunk c = chunk(begin);
  for (size_t g = begin; g < end; ++g) {
    fn(c);
    // Advance to the next chunk without another search.
    c.offset += c.size;
    ++c.index_in_leaf;
    // Leaves of zero bytes have no chunks and are stepped over.
    while (c.leaf < size() && c.offset >= bytes_[c.leaf]) {
      ++c.leaf;
      c.offset = 0;
      c.index_in_leaf = 0;
    }
    if (c.leaf < size()) {
      c.size = std::min(kLeafChunkBytes, bytes_[c.leaf] - c.offset);
    }
  }
}

}  // namespace rlrt

#endif  // RLRT_MODELS_PARAM_LEAVES_H_
