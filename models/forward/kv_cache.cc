#include "models/forward/kv_cache.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <functional>
#include <string>

namespace rlrt {

KvCacheShape KvCacheShape::For(const ModelConfig& config,
                               int64_t max_total_tokens, int64_t page_size,
                               DType dtype) {
  KvCacheShape s;
  s.dtype = dtype;
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
         DTypeSize(dtype);
}

StatusOr<std::unique_ptr<KvCache>> KvCache::Create(const KvCacheShape& shape) {
  if (shape.num_layers <= 0 || shape.num_kv_heads <= 0 || shape.head_dim <= 0 ||
      shape.page_size <= 0 || shape.num_pages <= 0) {
    return InvalidArgumentError(
        "KV cache shape must be positive in every field");
  }
  if (shape.dtype != DType::kF32 && shape.dtype != DType::kBF16) {
    return InvalidArgumentError("KV cache dtype must be float32 or bfloat16");
  }
  if (shape.num_pages > INT32_MAX) {
    return InvalidArgumentError("KV cache has more pages than page ids allow");
  }
  ASSIGN_OR_RETURN(PageArena arena, PageArena::Create(shape.bytes()));
  return std::unique_ptr<KvCache>(new KvCache(shape, std::move(arena)));
}

KvCache::KvCache(const KvCacheShape& shape, PageArena arena)
    : shape_(shape), arena_(std::move(arena)) {
  keys_ = static_cast<std::byte*>(arena_.data());
  values_ = keys_ + shape_.bytes() / 2;
}

PagedKvView KvCache::LayerView(int64_t layer) const {
  const size_t layer_bytes =
      shape_.num_pages * shape_.page_stride() * DTypeSize(shape_.dtype);
  return PagedKvView{keys_ + layer * layer_bytes, values_ + layer * layer_bytes,
                     shape_.page_stride(), shape_.page_size, shape_.dtype};
}

std::byte* KvCache::Slot(std::byte* base, int64_t layer, int32_t page,
                         int64_t kv_head, int64_t slot) const {
  const int64_t element =
      (layer * shape_.num_pages + page) * shape_.page_stride() +
      (kv_head * shape_.page_size + slot) * shape_.head_dim;
  return base + element * DTypeSize(shape_.dtype);
}

void KvCache::Write(std::byte* slot, const float* src) const {
  if (shape_.dtype == DType::kF32) {
    std::memcpy(slot, src, shape_.head_dim * sizeof(float));
    return;
  }
  uint16_t* out = reinterpret_cast<uint16_t*>(slot);
  for (int64_t i = 0; i < shape_.head_dim; ++i) out[i] = F32ToBf16(src[i]);
}

void KvCache::WriteKey(int64_t layer, int32_t page, int64_t kv_head,
                       int64_t slot, const float* src) {
  Write(Slot(keys_, layer, page, kv_head, slot), src);
}

void KvCache::WriteValue(int64_t layer, int32_t page, int64_t kv_head,
                         int64_t slot, const float* src) {
  Write(Slot(values_, layer, page, kv_head, slot), src);
}

float* KvCache::KeySlot(int64_t layer, int32_t page, int64_t kv_head,
                        int64_t slot) {
  if (shape_.dtype != DType::kF32) return nullptr;
  return reinterpret_cast<float*>(Slot(keys_, layer, page, kv_head, slot));
}

float* KvCache::ValueSlot(int64_t layer, int32_t page, int64_t kv_head,
                          int64_t slot) {
  if (shape_.dtype != DType::kF32) return nullptr;
  return reinterpret_cast<float*>(Slot(values_, layer, page, kv_head, slot));
}

void KvCache::CopyPage(int32_t from, int32_t to) {
  const size_t bytes = shape_.page_stride() * DTypeSize(shape_.dtype);
  for (int64_t layer = 0; layer < shape_.num_layers; ++layer) {
    std::memcpy(Slot(keys_, layer, to, 0, 0), Slot(keys_, layer, from, 0, 0),
                bytes);
    std::memcpy(Slot(values_, layer, to, 0, 0),
                Slot(values_, layer, from, 0, 0), bytes);
  }
}

Status KvCache::ReleasePages(std::span<const int32_t> sorted) {
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] < 0 || sorted[i] >= shape_.num_pages) {
      return OutOfRangeError("KV page " + std::to_string(sorted[i]) +
                             " outside a pool of " +
                             std::to_string(shape_.num_pages));
    }
    if (i > 0 && sorted[i] <= sorted[i - 1]) {
      return InvalidArgumentError("KV pages to release must be ascending");
    }
  }
  const size_t page_bytes = shape_.page_stride() * DTypeSize(shape_.dtype);
  const size_t layer_bytes = shape_.num_pages * page_bytes;
  const size_t values_offset = values_ - keys_;
  for (size_t first = 0; first < sorted.size();) {
    size_t last = first;  // The run is sorted[first..last], consecutive ids.
    while (last + 1 < sorted.size() && sorted[last + 1] == sorted[last] + 1) {
      ++last;
    }
    const size_t run_offset = sorted[first] * page_bytes;
    const size_t run_bytes = (sorted[last] - sorted[first] + 1) * page_bytes;
    for (int64_t layer = 0; layer < shape_.num_layers; ++layer) {
      const size_t offset = layer * layer_bytes + run_offset;
      RETURN_IF_ERROR(arena_.Release(offset, run_bytes));
      RETURN_IF_ERROR(arena_.Release(values_offset + offset, run_bytes));
    }
    first = last + 1;
  }
  return OkStatus();
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

void PagePool::OrderFreeLowestFirst() {
  std::sort(free_.begin(), free_.end(), std::greater<int32_t>());
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
