#include "sampler/prefix_cache.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace rlrt
