// A Qwen3 config sized to a parameter budget, for runs where only the shape
// of a model matters (the hot-swap demo, update benchmarks, memory planning).
#ifndef RLRT_MODELS_CONFIG_PARAM_BUDGET_H_
#define RLRT_MODELS_CONFIG_PARAM_BUDGET_H_

#include <cstdint>

#include "base/status.h"
#include "models/config/model_config.h"

namespace rlrt {

// Hidden size a multiple of 64, head_dim 64, GQA 2:1, MLP 3x hidden, a 4096
// vocabulary, tied embeddings: the widest hidden size for a depth picked by
// budget, then as many extra layers as fit. At most num_params parameters;
// an error when the budget is below the smallest such model.
StatusOr<ModelConfig> ConfigForParamBudget(int64_t num_params);

}  // namespace rlrt

#endif  // RLRT_MODELS_CONFIG_PARAM_BUDGET_H_
