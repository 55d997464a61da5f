// Properties of the forward pass that need no reference data: prefill and
// decode agree, batches equal single sequences, chunks equal whole prefills,
// bad batches change nothing, in-place weight changes take effect.
#include "models/forward/transformer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "models/forward/dummy_weights.h"
#include "models/forward/forward_test_util.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::MaxAbsDiff;
using testing::SequenceLogits;
using testing::SmallQwen3;

class TransformerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = SmallQwen3();
    weights_ = std::make_unique<ParamLeaves>(
        testing::AllocateOrDie(LeafSpecsFor(config_)));
    // Larger than dummy scale so attention patterns are far from uniform.
    ASSERT_TRUE(FillDummy(*weights_, 3, nullptr, [](const LeafSpec& s) {
                  DummyInit r;
                  r.stddev = s.name.ends_with("norm.weight") ? 0.1f : 0.3f;
                  if (s.name.ends_with("norm.weight")) {
                    r.kind = DummyInit::Kind::kConstant;
                    r.value = 1.0f;
                  }
                  return r;
                }).ok());
    mesh_ = testing::MakeMesh(2);
    TransformerOptions options;
    options.max_batch_tokens = 64;
    options.max_context = 128;
    auto model = Transformer::Create(config_, *weights_, mesh_.get(), options);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(model).value();
  }

  ModelConfig config_;
  std::unique_ptr<ParamLeaves> weights_;
  std::unique_ptr<Mesh> mesh_;
  std::unique_ptr<Transformer> model_;
};

const std::vector<int32_t> kTokens = {5, 17, 3, 60, 22, 22, 9, 41, 0, 33, 12};

TEST_F(TransformerTest, DecodeThroughTheCacheEqualsPrefill) {
  const auto prefill = SequenceLogits(*model_, kTokens, false);
  const auto decode = SequenceLogits(*model_, kTokens, true);
  // Bit for bit: every op's result for a row is independent of the others.
  EXPECT_EQ(prefill, decode);
  // And the logits are not trivially equal across positions.
  EXPECT_GT(std::fabs(prefill[0] - prefill[config_.vocab_size]), 1e-3);
}

TEST_F(TransformerTest, OpenBlasKernelAgreesClosely) {
  TransformerOptions options;
  options.max_batch_tokens = 64;
  options.max_context = 128;
  options.matmul = MatmulKernel::kOpenBlas;
  auto blas = Transformer::Create(config_, *weights_, mesh_.get(), options);
  ASSERT_TRUE(blas.ok());
  EXPECT_LT(MaxAbsDiff(SequenceLogits(**blas, kTokens, false),
                       SequenceLogits(*model_, kTokens, false)),
            1e-5);
}

TEST_F(TransformerTest, PageSizeDoesNotMatter) {
  const auto a = SequenceLogits(*model_, kTokens, false, 1);
  const auto b = SequenceLogits(*model_, kTokens, false, 16);
  EXPECT_EQ(a, b);
}

TEST_F(TransformerTest, RaggedBatchEqualsSingleSequences) {
  const std::vector<std::vector<int32_t>> seqs = {
      {1, 2, 3}, {40, 41, 42, 43, 44, 45, 46}, {7}};
  std::vector<std::vector<float>> alone;
  for (const auto& s : seqs) alone.push_back(SequenceLogits(*model_, s, false));

  auto cache = KvCache::Create(KvCacheShape::For(config_, 256, 4));
  ASSERT_TRUE(cache.ok());
  PagePool pool((*cache)->shape().num_pages);
  std::vector<std::vector<int32_t>> pages(seqs.size());
  std::vector<SequenceInput> batch;
  for (size_t i = 0; i < seqs.size(); ++i) {
    ASSERT_TRUE(pool.Allocate(2, &pages[i]).ok());
    batch.push_back(SequenceInput{seqs[i], 0, pages[i], true});
  }
  std::vector<float> logits(11 * config_.vocab_size);
  ASSERT_EQ(Transformer::LogitRows(batch), 11);
  ASSERT_TRUE(model_->Forward(batch, **cache, logits).ok());
  size_t row = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    std::vector<float> part(
        logits.begin() + row * config_.vocab_size,
        logits.begin() + (row + seqs[i].size()) * config_.vocab_size);
    EXPECT_EQ(part, alone[i]) << "sequence " << i;  // Bit for bit.
    row += seqs[i].size();
  }
}

TEST_F(TransformerTest, ChunkedPrefillEqualsWholePrefill) {
  const auto whole = SequenceLogits(*model_, kTokens, false);
  auto cache = KvCache::Create(KvCacheShape::For(config_, 256, 4));
  PagePool pool((*cache)->shape().num_pages);
  std::vector<int32_t> pages;
  ASSERT_TRUE(pool.Allocate(3, &pages).ok());
  std::vector<float> logits(kTokens.size() * config_.vocab_size);
  const std::span<const int32_t> all(kTokens);
  SequenceInput first{all.subspan(0, 6), 0, pages, true};
  SequenceInput second{all.subspan(6), 6, pages, true};
  ASSERT_TRUE(model_->Forward({&first, 1}, **cache, logits).ok());
  ASSERT_TRUE(
      model_
          ->Forward({&second, 1}, **cache,
                    std::span<float>(logits).subspan(6 * config_.vocab_size))
          .ok());
  EXPECT_EQ(whole, logits);
}

TEST_F(TransformerTest, BadBatchesAreRefusedAndWriteNothing) {
  auto cache = KvCache::Create(KvCacheShape::For(config_, 64, 4));
  PagePool pool((*cache)->shape().num_pages);
  std::vector<int32_t> pages;
  ASSERT_TRUE(pool.Allocate(2, &pages).ok());
  const float* slot = (*cache)->KeySlot(0, pages[0], 0, 0);
  const float before = slot[0];
  std::vector<float> logits(64 * config_.vocab_size);
  const std::vector<int32_t> ok_tokens = {1, 2, 3};
  const std::vector<int32_t> bad_token = {1, 64, 3};
  const std::vector<int32_t> bad_page = {2, 999};
  const std::vector<int32_t> long_tokens(100, 1);
  struct Case {
    SequenceInput input;
    std::string fragment;
  } cases[] = {
      {{bad_token, 0, pages, false}, "token id 64 outside the vocabulary"},
      {{ok_tokens, 7, pages, false}, "page table has 2 pages, 3 needed"},
      {{ok_tokens, 5, bad_page, false}, "page id 999 out of range"},
      {{ok_tokens, 126, pages, false}, "exceed the context of 128"},
      {{ok_tokens, -1, pages, false}, "negative start"},
      {{long_tokens, 0, pages, false}, "page table"},
  };
  for (const Case& c : cases) {
    Status s = model_->Forward({&c.input, 1}, **cache, logits);
    ASSERT_FALSE(s.ok()) << c.fragment;
    EXPECT_NE(s.message().find(c.fragment), std::string::npos) << s;
  }
  SequenceInput fine{ok_tokens, 0, pages, true};
  Status small = model_->Forward({&fine, 1}, **cache, {logits.data(), 10});
  EXPECT_NE(small.message().find("logits buffer"), std::string::npos) << small;
  auto other = KvCache::Create(KvCacheShape{3, 2, 16, 4, 4});
  EXPECT_FALSE(model_->Forward({&fine, 1}, **other, logits).ok());
  EXPECT_EQ(slot[0], before);  // Still untouched: every call was refused.
}

TEST_F(TransformerTest, WeightsChangedInPlaceTakeEffect) {
  const auto original = SequenceLogits(*model_, kTokens, false);
  const uint64_t hash = ContentHash(*weights_);
  ParamLeaves saved = testing::AllocateOrDie(LeafSpecsFor(config_));
  for (size_t i = 0; i < saved.size(); ++i) {
    std::memcpy(saved.data(i), weights_->data(i), saved.bytes(i));
  }
  ASSERT_TRUE(Perturb(*weights_, 1, 0.05, 1000).ok());
  const auto perturbed = SequenceLogits(*model_, kTokens, false);
  EXPECT_GT(MaxAbsDiff(original, perturbed), 1e-3);
  for (size_t i = 0; i < saved.size(); ++i) {
    std::memcpy(weights_->data(i), saved.data(i), saved.bytes(i));
  }
  ASSERT_EQ(ContentHash(*weights_), hash);
  EXPECT_EQ(SequenceLogits(*model_, kTokens, false), original);
}

TEST_F(TransformerTest, RefusesWeightsOfAnotherStructure) {
  ModelConfig other = config_;
  other.intermediate_size = 40;
  auto model = Transformer::Create(other, *weights_, nullptr);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("mlp.gate_proj.weight': shape"),
            std::string::npos)
      << model.status();
}

TEST_F(TransformerTest, DummyWeightsGiveFiniteLogits) {
  ASSERT_TRUE(InitDummyWeights(*weights_, 1, mesh_.get()).ok());
  const auto logits = SequenceLogits(*model_, kTokens, false);
  for (float l : logits) ASSERT_TRUE(std::isfinite(l));
}

}  // namespace
}  // namespace rlrt
