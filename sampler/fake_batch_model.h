// A model for scheduler tests whose logits are a known function of the
// whole sequence as stored in the KV cache: it writes each new token id into
// its KV slot and makes token (sum of the ids in the sequence's KV + length)
// mod vocab the clear favourite. A test can therefore compute the expected
// greedy continuation of any prompt by hand, and any mistake in page tables
// (a wrong fork, a stale prefix-cache page, a page freed too early and
// reused) changes the tokens.
#ifndef RLRT_SAMPLER_FAKE_BATCH_MODEL_H_
#define RLRT_SAMPLER_FAKE_BATCH_MODEL_H_

#include <algorithm>
#include <memory>
#include <vector>

#include "sampler/batch_model.h"

namespace rlrt::testing {

class FakeBatchModel : public BatchModel {
 public:
  FakeBatchModel(int64_t vocab, int64_t page_size, int64_t num_pages)
      : vocab_(vocab),
        cache_(*KvCache::Create(KvCacheShape{.num_layers = 1,
                                             .num_kv_heads = 1,
                                             .head_dim = 1,
                                             .page_size = page_size,
                                             .num_pages = num_pages})) {}

  // The favourite after `tokens` (the whole sequence so far).
  static int32_t Next(const std::vector<int32_t>& tokens, int64_t vocab) {
    int64_t sum = 0;
    for (int32_t t : tokens) sum += t;
    return static_cast<int32_t>((sum + static_cast<int64_t>(tokens.size())) %
                                vocab);
  }

  Status Forward(std::span<const SequenceInput> batch,
                 std::span<float> logits) override {
    ++calls_;
    max_batch_ = std::max<int64_t>(max_batch_, batch.size());
    const int64_t page_size = cache_->shape().page_size;
    int64_t row = 0;
    for (const SequenceInput& in : batch) {
      const int64_t end =
          in.start_position + static_cast<int64_t>(in.tokens.size());
      if (end > static_cast<int64_t>(in.pages.size()) * page_size)
        return InvalidArgumentError("page table too short");
      for (size_t i = 0; i < in.tokens.size(); ++i) {
        const int64_t p = in.start_position + static_cast<int64_t>(i);
        *cache_->KeySlot(0, in.pages[p / page_size], 0, p % page_size) =
            static_cast<float>(in.tokens[i]);
      }
      int64_t sum = 0;
      for (int64_t p = 0; p < end; ++p) {
        sum += static_cast<int64_t>(
            *cache_->KeySlot(0, in.pages[p / page_size], 0, p % page_size));
      }
      float* z = logits.data() + row * vocab_;
      std::fill(z, z + vocab_, 0.0f);
      z[(sum + end) % vocab_] = 5.0f;
      ++row;
    }
    return OkStatus();
  }
  KvCache& cache() override { return *cache_; }
  int64_t logits_width() const override { return vocab_; }
  uint64_t weight_version() const override { return version_; }

  void set_version(uint64_t v) { version_ = v; }
  int64_t calls() const { return calls_; }
  int64_t max_batch() const { return max_batch_; }

 private:
  int64_t vocab_;
  std::unique_ptr<KvCache> cache_;
  uint64_t version_ = 0;
  int64_t calls_ = 0;
  int64_t max_batch_ = 0;
};

}  // namespace rlrt::testing

#endif  // RLRT_SAMPLER_FAKE_BATCH_MODEL_H_
