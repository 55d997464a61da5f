// Decoder model configurations: parsed from a Hugging Face config.json
// (model_type qwen3, qwen2 or llama) or taken from a built-in preset, and
// the leaf structure they imply.
#ifndef RLRT_MODELS_CONFIG_MODEL_CONFIG_H_
#define RLRT_MODELS_CONFIG_MODEL_CONFIG_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/leaf_spec.h"

namespace rlrt {

enum class ModelType { kQwen3, kQwen2, kLlama };

std::string_view ModelTypeName(ModelType type);  // "qwen3", "qwen2", "llama"

struct ModelConfig {
  ModelType model_type = ModelType::kQwen3;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  // Explicit in Qwen3 and may differ from hidden_size / num_attention_heads.
  int64_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 0;
  // q/k/v projections carry biases: Qwen2 always, never otherwise. (In
  // Hugging Face, attention_bias on Llama/Qwen3 also adds an o_proj bias,
  // which the forward pass does not implement, so such configs are refused.)
  bool attention_bias = false;
  // Per-head RMSNorm on q and k before rotary (Qwen3).
  bool qk_norm = false;
  int64_t bos_token_id = -1;  // -1: none.
  std::vector<int64_t> eos_token_ids;
  // The checkpoint's storage dtype as config.json names it ("bfloat16", ...);
  // compute is always F32.
  std::string torch_dtype = "float32";

  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
  int64_t NumParams() const;
};

// The context length used when none is asked for: 4096 tokens, or less when
// the model's positions end sooner. The sampler's engine and the forward
// pass both default to it.
int64_t DefaultContextLength(const ModelConfig& config);

// Checks internal consistency: positive sizes, heads divisible by kv heads,
// token ids inside the vocabulary. Every parser and preset returns a config
// that passes.
Status ValidateModelConfig(const ModelConfig& config);

// Parses config.json text. Refuses (never ignores) options the forward pass
// does not implement: rope_scaling other than null, sliding-window attention
// turned on, hidden_act other than silu, mlp_bias, unknown model_type.
StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text);
StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& model_dir);

// A config.json that Hugging Face transformers and ParseModelConfig both read.
std::string ModelConfigToJson(const ModelConfig& config);

// Built-in presets: "qwen3-tiny" (a few million parameters, Qwen3 vocabulary,
// for tests and the CPU demo), "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b" (the
// real shapes, for dummy runs and memory planning).
StatusOr<ModelConfig> PresetConfig(std::string_view name);
std::vector<std::string> PresetNames();

// The parameter leaves, with Hugging Face names in the order of a PyTorch
// state_dict: embed_tokens; per layer q/k/v/o projections (+ biases),
// q_norm/k_norm, gate/up/down, input_layernorm, post_attention_layernorm;
// final norm; lm_head unless tied. The matrices (embedding, projections,
// LM head: all but a few thousandths of the parameters) have dtype
// `matrix_dtype`, F32 or BF16; norm weights and biases are always F32,
// as the ops that read them compute in float32 (a BF16 checkpoint's
// vectors widen to F32 exactly).
std::vector<LeafSpec> LeafSpecsFor(const ModelConfig& config,
                                   DType matrix_dtype = DType::kF32);

// Whether leaf `spec` of a decoder is one of its matrices (see above).
bool IsDecoderMatrix(const LeafSpec& spec);

// The dtype of the matrices of a leaf list of LeafSpecsFor's structure
// (F32 for an empty list).
DType DecoderMatrixDType(const std::vector<LeafSpec>& specs);

// A dtype flag ("auto", "bfloat16" or "float32", as --dtype and
// --kv_cache_dtype spell it): nullopt for auto.
StatusOr<std::optional<DType>> ParseDTypeFlag(std::string_view flag);
// "bfloat16" or "float32": how the flags and config.json name `dtype`.
std::string_view DTypeFlagName(DType dtype);

// "auto", "bfloat16" or "float32" (the --dtype flag of the binaries), with
// auto resolved against the config's torch_dtype, real or dummy weights
// alike: bfloat16 stays BF16 (Qwen3 checkpoints and the real-shape
// presets), float32 and float16 compute in F32 (the qwen3-tiny preset is
// float32).
StatusOr<DType> ResolveWeightDType(std::string_view flag,
                                   const ModelConfig& config);

}  // namespace rlrt

#endif  // RLRT_MODELS_CONFIG_MODEL_CONFIG_H_
