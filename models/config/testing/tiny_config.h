// The one hand-written decoder config of the tests: a model family's
// switches (q/k norm for Qwen3, q/k/v biases for Qwen2) on a shape small
// enough to reason about, or to write a checkpoint of by hand. Tests that
// need other sizes pass their own TinyShape; the family rules stay here.
#ifndef RLRT_MODELS_CONFIG_TESTING_TINY_CONFIG_H_
#define RLRT_MODELS_CONFIG_TESTING_TINY_CONFIG_H_

#include <cstdint>

#include "models/config/model_config.h"

namespace rlrt::testing {

struct TinyShape {
  int64_t vocab_size = 16;
  int64_t hidden_size = 8;
  int64_t intermediate_size = 16;
  int64_t num_hidden_layers = 1;
  int64_t num_attention_heads = 2;
  int64_t num_key_value_heads = 1;
  int64_t head_dim = 4;
  int64_t max_position_embeddings = 32;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  int64_t eos_token_id = 1;
};

inline ModelConfig TinyConfig(ModelType type, const TinyShape& shape = {}) {
  ModelConfig c;
  c.model_type = type;
  c.vocab_size = shape.vocab_size;
  c.hidden_size = shape.hidden_size;
  c.intermediate_size = shape.intermediate_size;
  c.num_hidden_layers = shape.num_hidden_layers;
  c.num_attention_heads = shape.num_attention_heads;
  c.num_key_value_heads = shape.num_key_value_heads;
  c.head_dim = shape.head_dim;
  c.max_position_embeddings = shape.max_position_embeddings;
  c.rope_theta = shape.rope_theta;
  c.tie_word_embeddings = shape.tie_word_embeddings;
  c.eos_token_ids = {shape.eos_token_id};
  // The families' fixed switches, as ParseModelConfig sets them.
  c.attention_bias = type == ModelType::kQwen2;
  c.qk_norm = type == ModelType::kQwen3;
  return c;
}

}  // namespace rlrt::testing

#endif  // RLRT_MODELS_CONFIG_TESTING_TINY_CONFIG_H_
