#include "models/forward/page_table.h"

#include <gtest/gtest.h>

#include "models/forward/forward_test_util.h"
#include "models/forward/transformer.h"
#include "models/leaf_init.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

TEST(PageTableTest, ReserveAndReleaseAccountForPages) {
  PagePool pool(4);
  PageTable t(4);
  ASSERT_TRUE(t.Reserve(pool, 9).ok());  // 3 pages.
  EXPECT_EQ(t.pages().size(), 3u);
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_EQ(t.Reserve(pool, 20).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(t.pages().size(), 3u);        // Unchanged on failure.
  ASSERT_TRUE(t.Reserve(pool, 12).ok());  // Already covered.
  EXPECT_EQ(pool.num_free(), 1);
  t.Release(pool);
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_TRUE(t.pages().empty());
}

TEST(PageTableTest, ForkSharesFullPagesAndCopiesThePartialOne) {
  auto cache = KvCache::Create(KvCacheShape{2, 1, 2, 4, 8});
  PagePool pool(8);
  PageTable parent(4);
  ASSERT_TRUE(parent.Reserve(pool, 10).ok());
  parent.SetFilled(10);  // Pages 0, 1 full; page 2 holds 2 positions.
  for (int64_t layer = 0; layer < 2; ++layer) {
    (*cache)->KeySlot(layer, parent.pages()[2], 0, 1)[0] = 7.0f + layer;
  }
  auto child = parent.Fork(pool, **cache);
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(child->filled(), 10);
  EXPECT_EQ(child->pages()[0], parent.pages()[0]);
  EXPECT_EQ(child->pages()[1], parent.pages()[1]);
  EXPECT_NE(child->pages()[2], parent.pages()[2]);
  EXPECT_EQ(pool.RefCount(parent.pages()[0]), 2);
  EXPECT_EQ(pool.RefCount(parent.pages()[2]), 1);
  for (int64_t layer = 0; layer < 2; ++layer) {
    EXPECT_EQ((*cache)->KeySlot(layer, child->pages()[2], 0, 1)[0],
              7.0f + layer);
  }
  // Writing the child's copy leaves the parent's page alone.
  (*cache)->KeySlot(0, child->pages()[2], 0, 2)[0] = -1.0f;
  EXPECT_NE((*cache)->KeySlot(0, parent.pages()[2], 0, 2)[0], -1.0f);
  child->Release(pool);
  EXPECT_EQ(pool.RefCount(parent.pages()[0]), 1);
  parent.Release(pool);
  EXPECT_EQ(pool.num_free(), 8);
}

TEST(PageTableTest, ForkOnAPageBoundaryAllocatesNothing) {
  auto cache = KvCache::Create(KvCacheShape{1, 1, 2, 4, 4});
  PagePool pool(2);
  PageTable parent(4);
  ASSERT_TRUE(parent.Reserve(pool, 8).ok());
  parent.SetFilled(8);
  auto child = parent.Fork(pool, **cache);
  ASSERT_TRUE(child.ok());  // Succeeds with no free page at all.
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_EQ(child->pages().size(), 2u);
}

TEST(PageTableTest, ForkFailsCleanlyWhenThePoolIsFull) {
  auto cache = KvCache::Create(KvCacheShape{1, 1, 2, 4, 3});
  PagePool pool(3);
  PageTable parent(4);
  ASSERT_TRUE(parent.Reserve(pool, 10).ok());
  parent.SetFilled(10);
  auto child = parent.Fork(pool, **cache);
  EXPECT_EQ(child.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(pool.RefCount(parent.pages()[0]), 1);  // No references leaked.
}

// A GRPO group: the prompt is prefilled once, n samples fork from it and
// decode different tokens. Each must see exactly what a sequence prefilled
// from scratch with the same tokens sees.
TEST(PageTableTest, ForkedSamplesMatchIndependentSequencesBitForBit) {
  ModelConfig c = testing::SmallQwen3();
  c.vocab_size = 50;
  c.head_dim = 8;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 64;
  ParamLeaves weights = testing::AllocateOrDie(LeafSpecsFor(c));
  ASSERT_TRUE(FillDummy(weights, 5, nullptr, [](const LeafSpec&) {
                DummyInit r;
                r.stddev = 0.3f;
                return r;
              }).ok());
  auto model = Transformer::Create(c, weights, nullptr, {64, 64});
  ASSERT_TRUE(model.ok());
  const int64_t page_size = 4;
  auto cache = KvCache::Create(KvCacheShape::For(c, 64, page_size));
  PagePool pool((*cache)->shape().num_pages);
  const std::vector<int32_t> prompt = {3, 14, 15, 9, 26,
                                       5, 35, 8,  9, 7};  // 2.5 pages.
  PageTable parent(page_size);
  ASSERT_TRUE(parent.Reserve(pool, prompt.size()).ok());
  std::vector<float> logits(c.vocab_size);
  SequenceInput prefill{prompt, 0, parent.pages(), false};
  ASSERT_TRUE((*model)->Forward({&prefill, 1}, **cache, logits).ok());
  parent.SetFilled(prompt.size());

  const std::vector<std::vector<int32_t>> continuations = {
      {11, 12, 13}, {21, 22, 23}, {31, 32, 33}};
  std::vector<PageTable> samples;
  for (size_t i = 0; i < continuations.size(); ++i) {
    auto child = parent.Fork(pool, **cache);
    ASSERT_TRUE(child.ok());
    samples.push_back(std::move(child).value());
  }
  // Decode the samples in lockstep, as one batch per step.
  std::vector<std::vector<float>> got(continuations.size());
  for (size_t step = 0; step < 3; ++step) {
    std::vector<SequenceInput> batch;
    for (size_t i = 0; i < samples.size(); ++i) {
      const int64_t pos = prompt.size() + step;
      ASSERT_TRUE(samples[i].Reserve(pool, pos + 1).ok());
      batch.push_back(SequenceInput{
          {&continuations[i][step], 1}, pos, samples[i].pages(), false});
    }
    std::vector<float> out(samples.size() * c.vocab_size);
    ASSERT_TRUE((*model)->Forward(batch, **cache, out).ok());
    for (size_t i = 0; i < samples.size(); ++i) {
      samples[i].SetFilled(prompt.size() + step + 1);
      got[i].insert(got[i].end(), out.begin() + i * c.vocab_size,
                    out.begin() + (i + 1) * c.vocab_size);
    }
  }
  for (size_t i = 0; i < continuations.size(); ++i) {
    std::vector<int32_t> whole = prompt;
    whole.insert(whole.end(), continuations[i].begin(), continuations[i].end());
    const std::vector<float> alone =
        testing::SequenceLogits(**model, whole, false);
    const std::vector<float> tail(alone.end() - 3 * c.vocab_size, alone.end());
    EXPECT_EQ(got[i], tail) << "sample " << i;
  }
  for (PageTable& s : samples) s.Release(pool);
  parent.Release(pool);
  EXPECT_EQ(pool.num_free(), pool.num_pages());
}

}  // namespace
}  // namespace rlrt
