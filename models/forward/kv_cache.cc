#include "models/forward/kv_cache.h"

#include <cassert>
#include <cstring>

namespace rlrt {

KvCacheShape KvCacheShape::For(const ModelConfig& config,
                               int64_t max_total_tokens, int64_t page_size) {
  KvCacheShape s;
  s.num_layers = config.num_hidden_layers;
  s.num_kv_heads = config.num_key_value_heads;
  s.head_dim = config.head_dim;
  s.page_size = page_size;
  s.num_pages =
      page_size > 0 ? (max_total_tokens + page_size - 1) / page_size : 0;
  return s;
}

size_t KvCacheShape::bytes() const {
  return 2 * static_cast<size_t>(num_layers) * num_pages * page_stride() *
         sizeof(float);
}

StatusOr<std::unique_ptr<KvCache>> KvCache::Create(const KvCacheShape& shape) {
  if (shape.num_layers <= 0 || shape.num_kv_heads <= 0 || shape.head_dim <= 0 ||
      shape.page_size <= 0 || shape.num_pages <= 0) {
    return InvalidArgumentError(
        "KV cache shape must be positive in every field");
  }
  if (shape.num_pages > INT32_MAX) {
    return InvalidArgumentError("KV cache has more pages than page ids allow");
  }
  ASSIGN_OR_RETURN(PageArena arena, PageArena::Create(shape.bytes()));
  return std::unique_ptr<KvCache>(new KvCache(shape, std::move(arena)));
}

KvCache::KvCache(const KvCacheShape& shape, PageArena arena)
    : shape_(shape), arena_(std::move(arena)) {
  keys_ = reinterpret_cast<float*>(arena_.data());
  values_ = keys_ + shape_.num_layers * shape_.num_pages * shape_.page_stride();
}

PagedKvView KvCache::LayerView(int64_t layer) const {
  const int64_t layer_stride = shape_.num_pages * shape_.page_stride();
  return PagedKvView{keys_ + layer * layer_stride,
                     values_ + layer * layer_stride, shape_.page_stride(),
                     shape_.page_size};
}

float* KvCache::Slot(float* base, int64_t layer, int32_t page, int64_t kv_head,
                     int64_t slot) const {
  return base + (layer * shape_.num_pages + page) * shape_.page_stride() +
         (kv_head * shape_.page_size + slot) * shape_.head_dim;
}

float* KvCache::KeySlot(int64_t layer, int32_t page, int64_t kv_head,
                        int64_t slot) {
  return Slot(keys_, layer, page, kv_head, slot);
}

float* KvCache::ValueSlot(int64_t layer, int32_t page, int64_t kv_head,
                          int64_t slot) {
  return Slot(values_, layer, page, kv_head, slot);
}

void KvCache::CopyPage(int32_t from, int32_t to) {
  const size_t bytes = shape_.page_stride() * sizeof(float);
  for (int64_t layer = 0; layer < shape_.num_layers; ++layer) {
    std::memcpy(KeySlot(layer, to, 0, 0), KeySlot(layer, from, 0, 0), bytes);
    std::memcpy(ValueSlot(layer, to, 0, 0), ValueSlot(layer, from, 0, 0),
                bytes);
  }
}

PagePool::PagePool(int64_t num_pages)
    : refs_(num_pages, 0), cache_marks_(num_pages, 0) {
  free_.reserve(num_pages);
  // Hand out low ids first: pop_back takes from the end.
  for (int64_t p = num_pages - 1; p >= 0; --p)
    free_.push_back(static_cast<int32_t>(p));
}

Status PagePool::Allocate(int64_t n, std::vector<int32_t>* pages) {
  if (n < 0)
    return InvalidArgumentError("cannot allocate a negative page count");
  if (n > num_free()) {
    return ResourceExhaustedError("KV pool has " + std::to_string(num_free()) +
                                  " free pages, " + std::to_string(n) +
                                  " asked");
  }
  for (int64_t i = 0; i < n; ++i) {
    const int32_t page = free_.back();
    free_.pop_back();
    refs_[page] = 1;
    pages->push_back(page);
  }
  return OkStatus();
}

void PagePool::Retain(int32_t page) {
  assert(refs_[page] > 0);
  Update(page, [&] { ++refs_[page]; });
}

void PagePool::Release(int32_t page) {
  assert(refs_[page] > 0);
  Update(page, [&] { --refs_[page]; });
  if (refs_[page] == 0) free_.push_back(page);
}

void PagePool::MarkCached(int32_t page) {
  assert(refs_[page] > 0);
  Update(page, [&] { ++cache_marks_[page]; });
}

void PagePool::UnmarkCached(int32_t page) {
  assert(cache_marks_[page] > 0);
  Update(page, [&] { --cache_marks_[page]; });
}

}  // namespace rlrt
