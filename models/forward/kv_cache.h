// The paged KV cache: one pool of fixed-size pages per layer for keys and one
// for values, allocated once. A sequence owns a page table (a list of page
// ids); position p of the sequence lives in page table[p / page_size], slot
// p % page_size. Pages can be shared between sequences (a GRPO group shares
// its prompt's pages) through PagePool's reference counts.
//
// Layout per layer: [num_pages][num_kv_heads][page_size][head_dim], so the
// keys one attention head reads within a page are contiguous.
//
// Elements are float32 or BF16 (KvCacheShape::dtype): a BF16 cache holds
// twice the tokens in the same memory. Keys and values reach it already
// rounded to BF16 values (DecoderLayers rounds them for a BF16 cache, in
// the trainer's pass too), so storing them loses nothing more and the
// attention, which widens them exactly, sees what the trainer sees.
#ifndef RLRT_MODELS_FORWARD_KV_CACHE_H_
#define RLRT_MODELS_FORWARD_KV_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"
#include "models/config/model_config.h"
#include "models/dtype.h"
#include "models/ops/attention.h"
#include "models/page_arena.h"

namespace rlrt {

struct KvCacheShape {
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t page_size = 16;
  int64_t num_pages = 0;
  DType dtype = DType::kF32;  // F32 or BF16.

  // The shape for `config` holding at least `max_total_tokens` tokens.
  static KvCacheShape For(const ModelConfig& config, int64_t max_total_tokens,
                          int64_t page_size, DType dtype = DType::kF32);
  // Elements per page: kv_heads * page_size * head_dim.
  int64_t page_stride() const { return num_kv_heads * page_size * head_dim; }
  int64_t capacity_tokens() const { return num_pages * page_size; }
  size_t bytes() const;
};

class KvCache {
 public:
  static StatusOr<std::unique_ptr<KvCache>> Create(const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }
  PagedKvView LayerView(int64_t layer) const;
  // head_dim floats into one slot, converted to the cache's dtype.
  void WriteKey(int64_t layer, int32_t page, int64_t kv_head, int64_t slot,
                const float* src);
  void WriteValue(int64_t layer, int32_t page, int64_t kv_head, int64_t slot,
                  const float* src);
  // The slot's floats; a float32 cache only (null otherwise).
  float* KeySlot(int64_t layer, int32_t page, int64_t kv_head, int64_t slot);
  float* ValueSlot(int64_t layer, int32_t page, int64_t kv_head, int64_t slot);
  // Copies page `from`'s keys and values in every layer into page `to`.
  void CopyPage(int32_t from, int32_t to);
  // Gives the memory of these pages (free ones: their contents are lost)
  // back to the kernel in every layer; they read as zeros and cost nothing
  // until written again. `sorted` holds distinct ids, ascending (checked;
  // nothing is released otherwise). Only whole release granules
  // (PageArena) inside a run of consecutive ids are released, so no other
  // page's contents are touched. An idle sampler beside a trainer in one
  // process returns what its last rollouts touched instead of holding it
  // through the training step.
  Status ReleasePages(std::span<const int32_t> sorted);

 private:
  KvCache(const KvCacheShape& shape, PageArena arena);
  std::byte* Slot(std::byte* base, int64_t layer, int32_t page, int64_t kv_head,
                  int64_t slot) const;
  void Write(std::byte* slot, const float* src) const;

  KvCacheShape shape_;
  PageArena arena_;
  std::byte* keys_ = nullptr;
  std::byte* values_ = nullptr;
};

// Page ids with reference counts. Not thread-safe: one owner (the sampler's
// scheduler, or a single-threaded tool) allocates and releases.
class PagePool {
 public:
  explicit PagePool(int64_t num_pages);

  int64_t num_pages() const { return static_cast<int64_t>(refs_.size()); }
  int64_t num_free() const { return static_cast<int64_t>(free_.size()); }
  // The ids with no reference, in the reverse of the order Allocate hands
  // them out.
  std::span<const int32_t> free_pages() const { return free_; }
  // Hands out the lowest free ids first from now on, as a new pool does
  // (free_pages() is then descending), so the next sequences touch as few
  // pages of memory as they can.
  void OrderFreeLowestFirst();
  // Appends n fresh pages (refcount 1) to *pages, or fails with
  // ResourceExhausted and changes nothing.
  Status Allocate(int64_t n, std::vector<int32_t>* pages);
  void Retain(int32_t page);
  // Drops one reference; the page is free again at zero.
  void Release(int32_t page);
  int32_t RefCount(int32_t page) const { return refs_[page]; }

  // A prefix cache marks the pages it holds a reference to (Retain first,
  // then MarkCached; UnmarkCached, then Release). A cached page whose only
  // reference is the cache's can be evicted; the pool keeps their count up
  // to date as references change, so reading it costs nothing (the
  // scheduler publishes it after every step).
  void MarkCached(int32_t page);
  void UnmarkCached(int32_t page);
  int64_t num_evictable_cached() const { return evictable_cached_; }

 private:
  bool EvictableCached(int32_t page) const {
    return cache_marks_[page] > 0 && refs_[page] == 1;
  }
  // Runs `change` on the page's counts and keeps evictable_cached_ true.
  template <typename Change>
  void Update(int32_t page, Change change) {
    evictable_cached_ -= EvictableCached(page);
    change();
    evictable_cached_ += EvictableCached(page);
  }

  std::vector<int32_t> free_;  // Stack of free ids.
  std::vector<int32_t> refs_;
  std::vector<int32_t> cache_marks_;
  int64_t evictable_cached_ = 0;
};

}  // namespace rlrt

#endif  // RLRT_MODELS_FORWARD_KV_CACHE_H_
