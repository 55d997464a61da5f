#include "models/forward/kv_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <set>
#include <vector>

namespace rlrt {
namespace {

TEST(PagePoolTest, AllocatesReleasesAndCountsReferences) {
  PagePool pool(5);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(pool.Allocate(3, &a).ok());
  EXPECT_EQ(a, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(pool.num_free(), 2);
  Status too_many = pool.Allocate(3, &b);
  EXPECT_EQ(too_many.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(b.empty());  // Nothing handed out on failure.
  EXPECT_EQ(pool.num_free(), 2);
  pool.Retain(1);
  pool.Release(1);
  EXPECT_EQ(pool.RefCount(1), 1);
  EXPECT_EQ(pool.num_free(), 2);
  pool.Release(1);
  EXPECT_EQ(pool.num_free(), 3);
  ASSERT_TRUE(pool.Allocate(3, &b).ok());
  EXPECT_EQ(std::set<int32_t>(b.begin(), b.end()),
            (std::set<int32_t>{1, 3, 4}));
  EXPECT_FALSE(pool.Allocate(-1, &b).ok());
}

TEST(PagePoolTest, OrderFreeLowestFirstHandsOutLowIdsAgain) {
  PagePool pool(6);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.Allocate(6, &a).ok());
  for (int32_t page : {4, 1, 5, 2}) pool.Release(page);
  pool.OrderFreeLowestFirst();
  const std::span<const int32_t> free = pool.free_pages();
  EXPECT_EQ(std::vector<int32_t>(free.begin(), free.end()),
            (std::vector<int32_t>{5, 4, 2, 1}));
  std::vector<int32_t> b;
  ASSERT_TRUE(pool.Allocate(3, &b).ok());
  EXPECT_EQ(b, (std::vector<int32_t>{1, 2, 4}));
}

TEST(KvCacheTest, SlotsAreDisjointAndMatchTheLayerView) {
  KvCacheShape shape{2, 3, 4, 5, 6};
  auto cache = KvCache::Create(shape);
  ASSERT_TRUE(cache.ok()) << cache.status();
  std::set<const float*> seen;
  for (int64_t l = 0; l < 2; ++l) {
    const PagedKvView view = (*cache)->LayerView(l);
    for (int32_t p = 0; p < 6; ++p) {
      for (int64_t h = 0; h < 3; ++h) {
        for (int64_t s = 0; s < 5; ++s) {
          float* k = (*cache)->KeySlot(l, p, h, s);
          float* v = (*cache)->ValueSlot(l, p, h, s);
          EXPECT_TRUE(seen.insert(k).second);
          EXPECT_TRUE(seen.insert(v).second);
          const int64_t at = p * view.page_stride + (h * 5 + s) * 4;
          EXPECT_EQ(k, static_cast<const float*>(view.keys) + at);
          EXPECT_EQ(v, static_cast<const float*>(view.values) + at);
        }
      }
    }
  }
  EXPECT_EQ(shape.bytes(), 2u * 2 * 6 * 3 * 5 * 4 * sizeof(float));
  EXPECT_FALSE(KvCache::Create(KvCacheShape{2, 3, 4, 0, 6}).ok());
}

// Writes, into every slot of `page`, a value naming the layer, the page and
// keys (+) or values (-).
void FillPage(KvCache& cache, int32_t page) {
  const KvCacheShape& s = cache.shape();
  for (int64_t l = 0; l < s.num_layers; ++l) {
    const float mark = static_cast<float>(1 + l * 1000 + page);
    std::vector<float> keys(s.head_dim, mark), values(s.head_dim, -mark);
    for (int64_t h = 0; h < s.num_kv_heads; ++h) {
      for (int64_t slot = 0; slot < s.page_size; ++slot) {
        cache.WriteKey(l, page, h, slot, keys.data());
        cache.WriteValue(l, page, h, slot, values.data());
      }
    }
  }
}

// Whether every element of `page` in every layer holds FillPage's values
// (filled) or zeros (not).
bool PageHolds(KvCache& cache, int32_t page, bool filled) {
  const KvCacheShape& s = cache.shape();
  for (int64_t l = 0; l < s.num_layers; ++l) {
    const float mark = filled ? static_cast<float>(1 + l * 1000 + page) : 0.f;
    for (int64_t h = 0; h < s.num_kv_heads; ++h) {
      for (int64_t slot = 0; slot < s.page_size; ++slot) {
        const float* k = cache.KeySlot(l, page, h, slot);
        const float* v = cache.ValueSlot(l, page, h, slot);
        for (int64_t i = 0; i < s.head_dim; ++i) {
          if (k[i] != mark || v[i] != -mark) return false;
        }
      }
    }
  }
  return true;
}

TEST(KvCacheTest, ReleasedPagesReadAsZerosAndOthersKeepTheirValues) {
  const int64_t os_page = sysconf(_SC_PAGESIZE);
  // One KV page per OS page in each layer, keys and values.
  KvCacheShape shape{.num_layers = 2,
                     .num_kv_heads = 1,
                     .head_dim = os_page / 16,
                     .page_size = 4,
                     .num_pages = 8};
  auto cache = KvCache::Create(shape);
  ASSERT_TRUE(cache.ok()) << cache.status();
  for (int32_t p = 0; p < 8; ++p) FillPage(**cache, p);
  const std::vector<int32_t> unsorted = {1, 5, 2}, repeated = {1, 2, 2, 5};
  EXPECT_EQ((*cache)->ReleasePages(unsorted).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*cache)->ReleasePages(repeated).code(),
            StatusCode::kInvalidArgument);
  for (int32_t p = 0; p < 8; ++p) EXPECT_TRUE(PageHolds(**cache, p, true));
  const std::vector<int32_t> released = {1, 2, 5};
  ASSERT_TRUE((*cache)->ReleasePages(released).ok());
  for (int32_t p = 0; p < 8; ++p) {
    const bool gone = p == 1 || p == 2 || p == 5;
    EXPECT_TRUE(PageHolds(**cache, p, !gone)) << "page " << p;
  }
  // A released page is usable again.
  FillPage(**cache, 2);
  EXPECT_TRUE(PageHolds(**cache, 2, true));
  const std::vector<int32_t> outside = {3, 8};
  EXPECT_EQ((*cache)->ReleasePages(outside).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(PageHolds(**cache, 3, true));  // Checked before anything goes.
}

TEST(KvCacheTest, PagesSmallerThanAnOsPageGoOnlyAsWholeOsPages) {
  const int64_t os_page = sysconf(_SC_PAGESIZE);
  // Four KV pages per OS page.
  KvCacheShape shape{.num_layers = 2,
                     .num_kv_heads = 1,
                     .head_dim = os_page / 4 / 16,
                     .page_size = 4,
                     .num_pages = 12};
  auto cache = KvCache::Create(shape);
  ASSERT_TRUE(cache.ok()) << cache.status();
  for (int32_t p = 0; p < 12; ++p) FillPage(**cache, p);
  // 1..6 covers the second OS page (4..7) whole and two others in part.
  const std::vector<int32_t> released = {1, 2, 3, 4, 5, 6, 7, 9};
  ASSERT_TRUE((*cache)->ReleasePages(released).ok());
  for (int32_t p = 0; p < 12; ++p) {
    const bool gone = p >= 4 && p <= 7;
    EXPECT_TRUE(PageHolds(**cache, p, !gone)) << "page " << p;
  }
}

TEST(KvCacheTest, Bf16CacheStoresRoundedValuesInHalfTheBytes) {
  KvCacheShape shape{2, 3, 4, 5, 6};
  shape.dtype = DType::kBF16;
  EXPECT_EQ(shape.bytes(), 2u * 2 * 6 * 3 * 5 * 4 * 2);
  auto cache = KvCache::Create(shape);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ((*cache)->KeySlot(0, 0, 0, 0), nullptr);  // Not floats.
  const float key[4] = {1.0f, 1.00390625f, -3.1415927f, 1e-3f};
  const float value[4] = {0.5f, -2.0f, 65504.0f, 7.0f};
  (*cache)->WriteKey(1, 4, 2, 3, key);
  (*cache)->WriteValue(1, 4, 2, 3, value);
  (*cache)->CopyPage(4, 5);
  const PagedKvView view = (*cache)->LayerView(1);
  EXPECT_EQ(view.dtype, DType::kBF16);
  for (int32_t page : {4, 5}) {
    const int64_t at = page * view.page_stride + (2 * 5 + 3) * 4;
    const uint16_t* k = static_cast<const uint16_t*>(view.keys) + at;
    const uint16_t* v = static_cast<const uint16_t*>(view.values) + at;
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(k[i], F32ToBf16(key[i])) << page << " " << i;
      EXPECT_EQ(v[i], F32ToBf16(value[i])) << page << " " << i;
    }
  }
  KvCacheShape f16 = shape;
  f16.dtype = DType::kF16;
  EXPECT_FALSE(KvCache::Create(f16).ok());
}

}  // namespace
}  // namespace rlrt
