// Built-in model shapes. The real Qwen3 shapes are those of the public
// Qwen/Qwen3-{0.6B,1.7B,4B} config.json files (transformers 4.51): tied
// embeddings, head_dim 128, 8 KV heads, rope_theta 1e6, context 40960,
// bos 151643 (<|endoftext|>), eos 151645 (<|im_end|>), stored as bfloat16.
#include <string>

#include "models/config/model_config.h"

namespace rlrt {
namespace {

constexpr int64_t kQwen3Vocab = 151936;

ModelConfig Qwen3(int64_t hidden, int64_t intermediate, int64_t layers,
                  int64_t heads, int64_t kv_heads) {
  ModelConfig c;
  c.model_type = ModelType::kQwen3;
  c.vocab_size = kQwen3Vocab;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = 128;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1e6;
  c.tie_word_embeddings = true;
  c.max_position_embeddings = 40960;
  c.attention_bias = false;
  c.qk_norm = true;
  c.bos_token_id = 151643;
  c.eos_token_ids = {151645};
  c.torch_dtype = "bfloat16";
  return c;
}

// Small enough for CPU tests, but with the real Qwen3 vocabulary so the real
// tokenizer's ids are all valid, and head_dim 16 != hidden 32 / 4 heads so
// code that assumes head_dim == hidden / heads fails on it.
ModelConfig Qwen3Tiny() {
  ModelConfig c = Qwen3(/*hidden=*/32, /*intermediate=*/96, /*layers=*/4,
                        /*heads=*/4, /*kv_heads=*/2);
  c.head_dim = 16;
  // The chat models stop on either <|im_end|> or <|endoftext|>, as their
  // generation_config.json lists; there is no BOS.
  c.bos_token_id = -1;
  c.eos_token_ids = {151645, 151643};
  c.torch_dtype = "float32";
  return c;
}

}  // namespace

StatusOr<ModelConfig> PresetConfig(std::string_view name) {
  if (name == "qwen3-tiny") return Qwen3Tiny();
  if (name == "qwen3-0.6b") return Qwen3(1024, 3072, 28, 16, 8);
  if (name == "qwen3-1.7b") return Qwen3(2048, 6144, 28, 16, 8);
  if (name == "qwen3-4b") return Qwen3(2560, 9728, 36, 32, 8);
  std::string known;
  for (const std::string& n : PresetNames()) {
    known += (known.empty() ? "" : ", ") + n;
  }
  return NotFoundError("unknown model preset '" + std::string(name) +
                       "' (known: " + known + ")");
}

std::vector<std::string> PresetNames() {
  return {"qwen3-tiny", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b"};
}

}  // namespace rlrt
