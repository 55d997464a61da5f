// Running a Transformer on whole sequences in tests: allocates pages,
// prefills or decodes token by token, and returns every position's logits.
#ifndef RLRT_MODELS_FORWARD_FORWARD_TEST_UTIL_H_
#define RLRT_MODELS_FORWARD_FORWARD_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "models/config/testing/tiny_config.h"
#include "models/forward/kv_cache.h"
#include "models/forward/transformer.h"

namespace rlrt::testing {

// A small Qwen3 (GQA 4:2, explicit head_dim, untied) for forward tests.
inline ModelConfig SmallQwen3() {
  return TinyConfig(ModelType::kQwen3, {.vocab_size = 64,
                                        .hidden_size = 32,
                                        .intermediate_size = 48,
                                        .num_hidden_layers = 2,
                                        .num_attention_heads = 4,
                                        .num_key_value_heads = 2,
                                        .head_dim = 16,
                                        .max_position_embeddings = 512,
                                        .rope_theta = 1e6});
}

// Logits [tokens.size(), vocab] of a fresh sequence, in one prefill call or
// one call per token.
inline std::vector<float> SequenceLogits(Transformer& model,
                                         const std::vector<int32_t>& tokens,
                                         bool token_by_token,
                                         int64_t page_size = 4,
                                         const LoraAdapter* adapter = nullptr) {
  const int64_t vocab = model.config().vocab_size;
  auto cache = KvCache::Create(
      KvCacheShape::For(model.config(), static_cast<int64_t>(tokens.size()),
                        page_size, model.kv_dtype()));
  EXPECT_TRUE(cache.ok());
  PagePool pool((*cache)->shape().num_pages);
  std::vector<int32_t> pages;
  EXPECT_TRUE(
      pool.Allocate((tokens.size() + page_size - 1) / page_size, &pages).ok());
  std::vector<float> logits(tokens.size() * vocab);
  if (!token_by_token) {
    SequenceInput in{tokens, 0, pages, true, adapter};
    EXPECT_TRUE(model.Forward({&in, 1}, **cache, logits).ok());
    return logits;
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    SequenceInput in{
        {&tokens[i], 1}, static_cast<int64_t>(i), pages, false, adapter};
    Status s = model.Forward({&in, 1}, **cache,
                             {logits.data() + i * vocab, size_t(vocab)});
    EXPECT_TRUE(s.ok()) << s;
  }
  return logits;
}

inline double MaxAbsDiff(const std::vector<float>& a,
                         const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

}  // namespace rlrt::testing

#endif  // RLRT_MODELS_FORWARD_FORWARD_TEST_UTIL_H_
