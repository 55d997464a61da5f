// What the scheduler needs from a model: a ragged-batch forward pass over
// its paged KV cache. The engine runs the real Transformer through it;
// scheduler tests run a fake whose logits are a known function of the
// input, so batching, paging and stopping are tested without a model.
#ifndef RLRT_SAMPLER_BATCH_MODEL_H_
#define RLRT_SAMPLER_BATCH_MODEL_H_

#include <cstdint>
#include <span>

#include "base/status.h"
#include "models/forward/kv_cache.h"
#include "models/forward/transformer.h"

namespace rlrt {

class BatchModel {
 public:
  virtual ~BatchModel() = default;
  // Logits of the rows Transformer::LogitRows(batch) names, each
  // logits_width() wide; writes the new tokens' KV into their pages.
  virtual Status Forward(std::span<const SequenceInput> batch,
                         std::span<float> logits) = 0;
  virtual KvCache& cache() = 0;
  virtual int64_t logits_width() const = 0;
  // The version of the weights the next Forward uses.
  virtual uint64_t weight_version() const = 0;
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_BATCH_MODEL_H_
