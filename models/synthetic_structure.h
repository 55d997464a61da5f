// A Qwen3-shaped leaf structure sized to a parameter budget, with Hugging
// Face tensor names. Used where only the shape of a model matters (the
// hot-swap demo, update benchmarks, memory planning) before a real config.
#ifndef RLRT_MODELS_SYNTHETIC_STRUCTURE_H_
#define RLRT_MODELS_SYNTHETIC_STRUCTURE_H_

#include <cstdint>
#include <vector>

#include "models/leaf_spec.h"
#include "partition/util/status.h"

namespace rlrt {

struct SyntheticShape {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  bool tie_embeddings = true;
};

// A shape (hidden a multiple of 64, head_dim 64, GQA 2:1, MLP 3x hidden,
// tied embeddings) whose parameter count is at most num_params: the widest
// hidden size for a depth picked by budget, then as many extra layers as fit.
// Errors when num_params is below the smallest such model.
StatusOr<SyntheticShape> ShapeForParamBudget(int64_t num_params);

// The leaves of a Qwen3 decoder of that shape, in Hugging Face order.
std::vector<LeafSpec> Qwen3LeafSpecs(const SyntheticShape& shape,
                                     DType dtype = DType::kF32);

int64_t CountParams(const std::vector<LeafSpec>& specs);

}  // namespace rlrt

#endif  // RLRT_MODELS_SYNTHETIC_STRUCTURE_H_
