#include "sampler/prefix_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace rlrt {
namespace {

std::vector<int32_t> Tokens(int n, int salt = 0) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(i * 3 + salt);
  return t;
}

TEST(PrefixCacheTest, MatchesWholePagesBehindTheSamePrefixOnly) {
  PagePool pool(16);
  PrefixCache cache(4);
  std::vector<int32_t> pages;
  ASSERT_TRUE(pool.Allocate(3, &pages).ok());
  const std::vector<int32_t> tokens = Tokens(10);  // Pages 0, 1 full.
  cache.Insert(tokens, pages, pool);
  EXPECT_EQ(cache.size(), 2);
  EXPECT_EQ(pool.RefCount(pages[0]), 2);
  EXPECT_EQ(pool.RefCount(pages[2]), 1);  // Partial page: not cached.

  std::vector<int32_t> hit;
  EXPECT_EQ(cache.Match(tokens, 100, pool, &hit), 8);
  EXPECT_EQ(hit, std::vector<int32_t>(pages.begin(), pages.begin() + 2));
  EXPECT_EQ(pool.RefCount(pages[0]), 3);  // The caller's reference.

  // The limit cuts the match to whole pages.
  std::vector<int32_t> limited;
  EXPECT_EQ(cache.Match(tokens, 7, pool, &limited), 4);
  // Same second page, different first page: no match at all.
  std::vector<int32_t> other = tokens;
  other[0] += 1;
  std::vector<int32_t> miss;
  EXPECT_EQ(cache.Match(other, 100, pool, &miss), 0);
  EXPECT_TRUE(miss.empty());
}

TEST(PrefixCacheTest, EvictsOnlyPagesNobodyElseHoldsLeastRecentFirst) {
  PagePool pool(8);
  PrefixCache cache(2);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(pool.Allocate(2, &a).ok());
  ASSERT_TRUE(pool.Allocate(2, &b).ok());
  cache.Insert(Tokens(4, 0), a, pool);
  cache.Insert(Tokens(4, 1), b, pool);
  EXPECT_EQ(cache.Evictable(pool), 0);  // The sequences still hold them.
  for (int32_t p : a) pool.Release(p);
  EXPECT_EQ(cache.Evictable(pool), 2);
  EXPECT_EQ(cache.Evict(10, pool), 2);
  EXPECT_EQ(pool.num_free(), 6);
  for (int32_t p : b) pool.Release(p);
  std::vector<int32_t> hit;
  EXPECT_EQ(cache.Match(Tokens(4, 1), 4, pool, &hit), 4);
  for (int32_t p : hit) pool.Release(p);

  // Evicting one page takes the deepest of the least recently used prefix.
  std::vector<int32_t> c;
  ASSERT_TRUE(pool.Allocate(2, &c).ok());
  cache.Insert(Tokens(4, 2), c, pool);
  for (int32_t p : c) pool.Release(p);
  std::vector<int32_t> touch;
  EXPECT_EQ(cache.Match(Tokens(4, 2), 4, pool, &touch), 4);
  for (int32_t p : touch) pool.Release(p);
  EXPECT_EQ(cache.Evict(1, pool), 1);
  std::vector<int32_t> still;
  EXPECT_EQ(cache.Match(Tokens(4, 1), 4, pool, &still), 2);
  for (int32_t p : still) pool.Release(p);
  cache.Clear(pool);
  EXPECT_EQ(pool.num_free(), 8);
}

// Evictable() is read after every scheduler step, so the pool keeps the count
// as references change instead of walking the cache. Checked against a
// count from first principles after every operation of a random workload:
// a page is evictable when it is allocated, its one reference is not one
// the test (standing in for the sequences) holds, so it is the cache's.
TEST(PrefixCacheTest, EvictableCountFollowsEveryReferenceChange) {
  constexpr int kPages = 24;
  PagePool pool(kPages);
  PrefixCache cache(2);
  std::mt19937 rng(7);
  std::vector<int32_t> held;  // References the "sequences" hold.
  auto expected = [&] {
    int64_t n = 0;
    for (int32_t p = 0; p < kPages; ++p) {
      const auto mine = std::count(held.begin(), held.end(), p);
      n += pool.RefCount(p) == 1 && mine == 0;
    }
    return n;
  };
  for (int op = 0; op < 3000; ++op) {
    const std::vector<int32_t> prompt = Tokens(2 + rng() % 7, rng() % 4);
    switch (rng() % 4) {
      case 0: {  // A sequence allocates its pages and offers its prompt.
        std::vector<int32_t> pages;
        const int64_t n = (prompt.size() + 1) / 2;
        if (pool.num_free() < n) cache.Evict(n - pool.num_free(), pool);
        if (!pool.Allocate(n, &pages).ok()) break;
        cache.Insert(prompt, pages, pool);
        held.insert(held.end(), pages.begin(), pages.end());
        break;
      }
      case 1: {  // A sequence reuses a cached prefix.
        std::vector<int32_t> hit;
        cache.Match(prompt, prompt.size(), pool, &hit);
        held.insert(held.end(), hit.begin(), hit.end());
        break;
      }
      case 2:  // A sequence ends and drops one of its references.
        if (!held.empty()) {
          const size_t i = rng() % held.size();
          pool.Release(held[i]);
          held.erase(held.begin() + i);
        }
        break;
      case 3:
        if (rng() % 16 == 0) {
          cache.Clear(pool);
        } else {
          cache.Evict(1 + rng() % 3, pool);
        }
        break;
    }
    ASSERT_EQ(cache.Evictable(pool), expected()) << "after operation " << op;
  }
  for (int32_t p : held) pool.Release(p);
  cache.Clear(pool);
  EXPECT_EQ(cache.Evictable(pool), 0);
  EXPECT_EQ(pool.num_free(), kPages);
}

}  // namespace
}  // namespace rlrt
