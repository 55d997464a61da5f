#include "models/config/param_budget.h"

#include <string>

namespace rlrt {
namespace {

ModelConfig ShapeFor(int64_t hidden, int64_t layers) {
  ModelConfig c;
  c.model_type = ModelType::kQwen3;
  c.vocab_size = 4096;
  c.hidden_size = hidden;
  c.head_dim = 64;
  c.num_attention_heads = hidden / 64;
  c.num_key_value_heads = std::max<int64_t>(1, c.num_attention_heads / 2);
  // GQA needs heads divisible by kv heads.
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    c.num_key_value_heads = 1;
  c.intermediate_size = 3 * hidden;
  c.num_hidden_layers = layers;
  c.tie_word_embeddings = true;
  c.qk_norm = true;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1e6;
  c.max_position_embeddings = 4096;
  c.eos_token_ids = {1};
  return c;
}

}  // namespace

StatusOr<ModelConfig> ConfigForParamBudget(int64_t num_params) {
  const int64_t layers = num_params < 50'000'000      ? 4
                         : num_params < 1'000'000'000 ? 12
                                                      : 28;
  const ModelConfig smallest = ShapeFor(64, layers);
  if (smallest.NumParams() > num_params) {
    return InvalidArgumentError(
        "num_params " + std::to_string(num_params) +
        " is below the smallest model of this family (" +
        std::to_string(smallest.NumParams()) + " parameters)");
  }
  ModelConfig best = smallest;
  for (int64_t hidden = 128;; hidden += 64) {
    const ModelConfig c = ShapeFor(hidden, layers);
    if (c.NumParams() > num_params) break;
    best = c;
  }
  // Hidden sizes move in coarse steps; extra layers fill the remainder.
  for (;;) {
    ModelConfig deeper = best;
    ++deeper.num_hidden_layers;
    if (deeper.NumParams() > num_params) break;
    best = deeper;
  }
  RETURN_IF_ERROR(ValidateModelConfig(best));
  return best;
}

}  // namespace rlrt
