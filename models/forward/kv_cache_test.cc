#include "models/forward/kv_cache.h"

#include <gtest/gtest.h>

#include <set>

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
