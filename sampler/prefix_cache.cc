#include "sampler/prefix_cache.h"

#include <algorithm>

#include "models/hash.h"

namespace rlrt {
namespace {

// The key of the empty prefix; any fixed value works.
constexpr uint64_t kRootKey = 0x9ae16a3b2f90404full;

uint64_t RootKey(uint64_t space) {
  return space == 0 ? kRootKey : HashBytes(&space, sizeof(space), kRootKey);
}

}  // namespace

bool PrefixCache::Entry::Holds(uint64_t parent_key,
                               std::span<const int32_t> page_tokens) const {
  return parent == parent_key &&
         std::equal(tokens.begin(), tokens.end(), page_tokens.begin(),
                    page_tokens.end());
}

uint64_t PrefixCache::PageKey(uint64_t parent,
                              std::span<const int32_t> tokens) const {
  return HashBytes(tokens.data(), tokens.size_bytes(), parent);
}

int64_t PrefixCache::Match(std::span<const int32_t> tokens, int64_t max_tokens,
                           PagePool& pool, std::vector<int32_t>* pages,
                           uint64_t space) {
  const int64_t limit = std::min<int64_t>(max_tokens, tokens.size());
  uint64_t parent = RootKey(space);
  int64_t matched = 0;
  ++clock_;
  while (matched + page_size_ <= limit) {
    std::span<const int32_t> page_tokens = tokens.subspan(matched, page_size_);
    auto it = entries_.find(PageKey(parent, page_tokens));
    if (it == entries_.end()) break;
    Entry& e = it->second;
    if (!e.Holds(parent, page_tokens)) break;  // A hash collision.
    e.last_used = clock_;
    pool.Retain(e.page);
    pages->push_back(e.page);
    parent = it->first;
    matched += page_size_;
  }
  return matched;
}

void PrefixCache::Insert(std::span<const int32_t> tokens,
                         std::span<const int32_t> pages, PagePool& pool,
                         uint64_t space) {
  const int64_t full =
      std::min<int64_t>(tokens.size() / page_size_, pages.size());
  uint64_t parent = RootKey(space);
  ++clock_;
  for (int64_t i = 0; i < full; ++i) {
    std::span<const int32_t> page_tokens =
        tokens.subspan(i * page_size_, page_size_);
    const uint64_t key = PageKey(parent, page_tokens);
    auto [it, inserted] = entries_.try_emplace(key);
    Entry& e = it->second;
    if (inserted) {
      e.page = pages[i];
      e.parent = parent;
      e.depth = i;
      e.tokens.assign(page_tokens.begin(), page_tokens.end());
      pool.Retain(e.page);
      pool.MarkCached(e.page);
    } else if (!e.Holds(parent, page_tokens)) {
      return;  // A collision with another prefix: stop offering this one.
    }
    e.last_used = clock_;
    parent = key;
  }
}

int64_t PrefixCache::Evictable(const PagePool& pool) const {
  return pool.num_evictable_cached();
}

int64_t PrefixCache::Evict(int64_t n, PagePool& pool) {
  if (n <= 0) return 0;
  struct Candidate {
    uint64_t last_used;
    int64_t depth;
    uint64_t key;
  };
  std::vector<Candidate> candidates;
  for (const auto& [key, e] : entries_) {
    if (pool.RefCount(e.page) == 1)
      candidates.push_back({e.last_used, e.depth, key});
  }
  // Deepest first among equally old pages: a prefix's tail goes before its
  // head, so what stays cached is still reachable from the root.
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) {
              if (a.last_used != b.last_used) return a.last_used < b.last_used;
              return a.depth > b.depth;
            });
  const int64_t count = std::min<int64_t>(n, candidates.size());
  for (int64_t i = 0; i < count; ++i) {
    auto it = entries_.find(candidates[i].key);
    pool.UnmarkCached(it->second.page);
    pool.Release(it->second.page);
    entries_.erase(it);
  }
  return count;
}

void PrefixCache::Clear(PagePool& pool) {
  for (const auto& [key, e] : entries_) {
    pool.UnmarkCached(e.page);
    pool.Release(e.page);
  }
  entries_.clear();
}

}  // namespace rlrt
