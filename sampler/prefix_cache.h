// Reuse of prompt KV across requests, one full page at a time (the GSM8K
// system prompt and chat header are the same for every request).
//
// A cached page is keyed by a hash chained over every token before it and
// its own tokens, so a page only matches behind the exact same prefix; the
// tokens and the parent key are stored too, so a hash collision can never
// hand out the wrong KV. The cache holds one reference on each of its pages;
// a page only the cache holds can be evicted, least recently used first.
//
// The cache does not know which base weights computed a page: after a base
// weight update the engine clears it when the update asks for flush_cache.
// Pages computed with a LoRA adapter live in a key space of their own (the
// `space` argument: the adapter's identity and version), so they never
// match a request for the base or for another adapter or version, and the
// stale ones age out like any other.
//
// Not thread-safe: the scheduler owns it along with the page pool.
#ifndef RLRT_SAMPLER_PREFIX_CACHE_H_
#define RLRT_SAMPLER_PREFIX_CACHE_H_

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "models/forward/kv_cache.h"

namespace rlrt {

class PrefixCache {
 public:
  explicit PrefixCache(int64_t page_size) : page_size_(page_size) {}

  // Appends to *pages the cached pages holding the longest whole-page prefix
  // of `tokens` no longer than `max_tokens`, taking a reference on each for
  // the caller; returns the number of tokens they hold.
  int64_t Match(std::span<const int32_t> tokens, int64_t max_tokens,
                PagePool& pool, std::vector<int32_t>* pages,
                uint64_t space = 0);

  // Offers the whole pages of a computed prefix: pages[i] holds tokens
  // [i * page_size, (i + 1) * page_size). Pages not yet cached are added
  // (the cache takes a reference); ones already cached are marked used.
  void Insert(std::span<const int32_t> tokens, std::span<const int32_t> pages,
              PagePool& pool, uint64_t space = 0);

  // Frees up to `n` pages that only the cache holds, least recently used
  // (and, among equals, deepest) first; returns how many were freed.
  int64_t Evict(int64_t n, PagePool& pool);
  // Pages Evict could free now.
  int64_t Evictable(const PagePool& pool) const;
  // Drops every entry (pages still used by sequences stay theirs).
  void Clear(PagePool& pool);

  int64_t size() const { return static_cast<int64_t>(entries_.size()); }

 private:
  struct Entry {
    int32_t page = 0;
    uint64_t parent = 0;
    int64_t depth = 0;
    uint64_t last_used = 0;
    std::vector<int32_t> tokens;
    // Whether this entry is that page behind that parent (not a collision).
    bool Holds(uint64_t parent_key, std::span<const int32_t> page_tokens) const;
  };

  uint64_t PageKey(uint64_t parent, std::span<const int32_t> tokens) const;

  int64_t page_size_;
  uint64_t clock_ = 0;
  std::unordered_map<uint64_t, Entry> entries_;
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_PREFIX_CACHE_H_
