#include "models/forward/page_table.h"

#include <cassert>

namespace rlrt {

Status PageTable::Reserve(PagePool& pool, int64_t total_tokens) {
  const int64_t needed = (total_tokens + page_size_ - 1) / page_size_;
  const int64_t have = static_cast<int64_t>(pages_.size());
  if (needed <= have) return OkStatus();
  return pool.Allocate(needed - have, &pages_);
}

void PageTable::SetFilled(int64_t tokens) {
  assert(tokens <= capacity());
  filled_ = tokens;
}

StatusOr<PageTable> PageTable::Fork(PagePool& pool, KvCache& cache) const {
  PageTable child(page_size_);
  const int64_t full = filled_ / page_size_;
  const bool partial = filled_ % page_size_ != 0;
  if (partial) {
    RETURN_IF_ERROR(
        pool.Allocate(1, &child.pages_));  // The only fallible step.
    cache.CopyPage(pages_[full], child.pages_.back());
  }
  std::vector<int32_t> shared(pages_.begin(), pages_.begin() + full);
  for (int32_t page : shared) pool.Retain(page);
  shared.insert(shared.end(), child.pages_.begin(), child.pages_.end());
  child.pages_ = std::move(shared);
  child.filled_ = filled_;
  return child;
}

void PageTable::Release(PagePool& pool) {
  for (int32_t page : pages_) pool.Release(page);
  pages_.clear();
  filled_ = 0;
}

}  // namespace rlrt
