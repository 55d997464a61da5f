// The engine's BatchModel: the decoder forward pass over the engine's KV
// cache, reading the engine's leaf list in place.
#ifndef RLRT_SAMPLER_TRANSFORMER_BATCH_MODEL_H_
#define RLRT_SAMPLER_TRANSFORMER_BATCH_MODEL_H_

#include <memory>

#include "models/forward/kv_cache.h"
#include "models/forward/transformer.h"
#include "models/param_leaves.h"
#include "sampler/batch_model.h"

namespace rlrt {

class TransformerBatchModel : public BatchModel {
 public:
  TransformerBatchModel(std::unique_ptr<Transformer> transformer,
                        std::unique_ptr<KvCache> cache,
                        const ParamLeaves& weights)
      : transformer_(std::move(transformer)),
        cache_(std::move(cache)),
        weights_(weights) {}

  Status Forward(std::span<const SequenceInput> batch,
                 std::span<float> logits) override {
    return transformer_->Forward(batch, *cache_, logits);
  }
  KvCache& cache() override { return *cache_; }
  int64_t logits_width() const override {
    return transformer_->config().vocab_size;
  }
  uint64_t weight_version() const override { return weights_.version(); }

 private:
  std::unique_ptr<Transformer> transformer_;
  std::unique_ptr<KvCache> cache_;
  const ParamLeaves& weights_;
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_TRANSFORMER_BATCH_MODEL_H_
