// A sequence's page table: which KV pages hold its positions, and how many
// positions are filled. Tables can fork: a GRPO group prefills its prompt
// once and every sample forks from it, sharing the full pages (reference
// counts) and getting a private copy of a partly filled last page, which the
// samples would otherwise overwrite in each other's place (copy-on-write at
// fork time, since every sample writes that page next).
//
// Not thread-safe: the owner of the PagePool (the engine's scheduler) owns
// the tables too.
#ifndef RLRT_MODELS_FORWARD_PAGE_TABLE_H_
#define RLRT_MODELS_FORWARD_PAGE_TABLE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "models/forward/kv_cache.h"

namespace rlrt {

class PageTable {
 public:
  explicit PageTable(int64_t page_size) : page_size_(page_size) {}
  // A table starting with `pages`, on which the caller already holds one
  // reference each (e.g. prefix-cache hits), with `filled` positions filled.
  PageTable(int64_t page_size, std::vector<int32_t> pages, int64_t filled)
      : page_size_(page_size), filled_(filled), pages_(std::move(pages)) {}

  // Makes room for `total_tokens` positions, allocating pages as needed;
  // on ResourceExhausted nothing changes.
  Status Reserve(PagePool& pool, int64_t total_tokens);
  // Marks positions up to `tokens` as filled (they must be reserved).
  void SetFilled(int64_t tokens);

  // A new table for the same filled positions: full pages shared, the
  // partly filled last page copied into a fresh page. On
  // ResourceExhausted nothing changes.
  StatusOr<PageTable> Fork(PagePool& pool, KvCache& cache) const;

  // Drops this table's references; the table is empty afterwards.
  void Release(PagePool& pool);

  std::span<const int32_t> pages() const { return pages_; }
  int64_t filled() const { return filled_; }
  int64_t capacity() const {
    return static_cast<int64_t>(pages_.size()) * page_size_;
  }

 private:
  int64_t page_size_;
  int64_t filled_ = 0;
  std::vector<int32_t> pages_;
};

}  // namespace rlrt

#endif  // RLRT_MODELS_FORWARD_PAGE_TABLE_H_
