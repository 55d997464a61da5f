// The config-independent half of model_config.h: validation and the leaf
// structure a config implies. Parsing and printing config.json live in
// config_json.cc, the presets in presets.cc.
#include "models/config/model_config.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/config/decoder_params.h"

namespace rlrt {
namespace {

// Mirrors the per-leaf cap of ValidateLeafSpec, so a config that validates
// yields leaves that validate, and every product below stays far from
// int64 overflow.
constexpr int64_t kMaxLeafElements = int64_t{1} << 40;
// More layers than any real decoder; it bounds LeafSpecsFor's output size.
constexpr int64_t kMaxLayers = int64_t{1} << 16;

bool ProductFits(int64_t a, int64_t b) {
  return a > 0 && b > 0 && a <= kMaxLeafElements / b;
}

Status CheckPositive(std::string_view field, int64_t value) {
  if (value > 0) return OkStatus();
  return InvalidArgumentError(std::string(field) + " must be positive, got " +
                              std::to_string(value));
}

Status CheckTokenId(std::string_view field, int64_t id, int64_t vocab_size) {
  if (id >= 0 && id < vocab_size) return OkStatus();
  return InvalidArgumentError(std::string(field) + " " + std::to_string(id) +
                              " is outside the vocabulary [0, " +
                              std::to_string(vocab_size) + ")");
}

}  // namespace

std::string_view ModelTypeName(ModelType type) {
  switch (type) {
    case ModelType::kQwen3:
      return "qwen3";
    case ModelType::kQwen2:
      return "qwen2";
    case ModelType::kLlama:
      return "llama";
  }
  return "unknown";
}

Status ValidateModelConfig(const ModelConfig& c) {
  const std::string_view type = ModelTypeName(c.model_type);
  if (type == "unknown") return InvalidArgumentError("unknown model_type");
  RETURN_IF_ERROR(CheckPositive("vocab_size", c.vocab_size));
  RETURN_IF_ERROR(CheckPositive("hidden_size", c.hidden_size));
  RETURN_IF_ERROR(CheckPositive("intermediate_size", c.intermediate_size));
  RETURN_IF_ERROR(CheckPositive("num_hidden_layers", c.num_hidden_layers));
  RETURN_IF_ERROR(CheckPositive("num_attention_heads", c.num_attention_heads));
  RETURN_IF_ERROR(CheckPositive("num_key_value_heads", c.num_key_value_heads));
  RETURN_IF_ERROR(CheckPositive("head_dim", c.head_dim));
  RETURN_IF_ERROR(
      CheckPositive("max_position_embeddings", c.max_position_embeddings));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return InvalidArgumentError("num_attention_heads " +
                                std::to_string(c.num_attention_heads) +
                                " is not a multiple of num_key_value_heads " +
                                std::to_string(c.num_key_value_heads));
  }
  // Rotary embedding rotates pairs (i, i + head_dim/2).
  if (c.head_dim % 2 != 0) {
    return InvalidArgumentError("head_dim " + std::to_string(c.head_dim) +
                                " must be even for rotary embeddings");
  }
  if (c.num_hidden_layers > kMaxLayers) {
    return InvalidArgumentError("num_hidden_layers " +
                                std::to_string(c.num_hidden_layers) +
                                " is implausibly large");
  }
  if (!ProductFits(c.num_attention_heads, c.head_dim) ||
      !ProductFits(c.q_dim(), c.hidden_size) ||
      !ProductFits(c.vocab_size, c.hidden_size) ||
      !ProductFits(c.intermediate_size, c.hidden_size)) {
    return InvalidArgumentError(
        "model dimensions are too large (a weight matrix would exceed 2^40 "
        "elements)");
  }
  if (!std::isfinite(c.rms_norm_eps) || c.rms_norm_eps <= 0.0) {
    return InvalidArgumentError(
        "rms_norm_eps must be positive and finite, got " +
        std::to_string(c.rms_norm_eps));
  }
  if (!std::isfinite(c.rope_theta) || c.rope_theta <= 0.0) {
    return InvalidArgumentError("rope_theta must be positive and finite, got " +
                                std::to_string(c.rope_theta));
  }
  // The architecture fixes these two; a config that disagrees would build
  // leaves no checkpoint of that model_type has.
  const bool wants_bias = c.model_type == ModelType::kQwen2;
  if (c.attention_bias != wants_bias) {
    return InvalidArgumentError(
        std::string("attention_bias must be ") +
        (wants_bias ? "true" : "false") + " for model_type " +
        std::string(type) +
        (wants_bias ? " (Qwen2 always has q/k/v biases)"
                    : " (Llama/Qwen3 attention_bias also adds an o_proj bias, "
                      "which this runtime does not implement)"));
  }
  const bool wants_qk_norm = c.model_type == ModelType::kQwen3;
  if (c.qk_norm != wants_qk_norm) {
    return InvalidArgumentError(std::string("qk_norm must be ") +
                                (wants_qk_norm ? "true" : "false") +
                                " for model_type " + std::string(type));
  }
  if (c.bos_token_id != -1) {
    RETURN_IF_ERROR(CheckTokenId("bos_token_id", c.bos_token_id, c.vocab_size));
  }
  for (int64_t eos : c.eos_token_ids) {
    RETURN_IF_ERROR(CheckTokenId("eos_token_id", eos, c.vocab_size));
  }
  if (c.torch_dtype != "float32" && c.torch_dtype != "bfloat16" &&
      c.torch_dtype != "float16") {
    return InvalidArgumentError("torch_dtype '" + c.torch_dtype +
                                "' is not float32, bfloat16 or float16");
  }
  return OkStatus();
}

int64_t DefaultContextLength(const ModelConfig& config) {
  return std::min<int64_t>(4096, config.max_position_embeddings);
}

std::vector<LeafSpec> LeafSpecsFor(const ModelConfig& c, DType matrix_dtype) {
  // An invalid config has no meaningful structure (and could ask for an
  // absurd number of leaves), so it gets none.
  if (!ValidateModelConfig(c).ok()) return {};
  std::vector<LeafSpec> specs;
  auto add_model_param = [&](ModelParam p) {
    if (!HasModelParam(c, p)) return;
    const std::vector<int64_t> shape = ModelParamShape(c, p);
    specs.push_back(LeafSpec{std::string(ModelParamName(p)), shape,
                             shape.size() == 2 ? matrix_dtype : DType::kF32});
  };
  add_model_param(ModelParam::kEmbedding);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    for (LayerParam p : kLayerParamsInStateDictOrder) {
      if (!HasLayerParam(c, p)) continue;
      const std::vector<int64_t> shape = LayerParamShape(c, p);
      specs.push_back(LeafSpec{LayerParamName(l, p), shape,
                               shape.size() == 2 ? matrix_dtype : DType::kF32});
    }
  }
  add_model_param(ModelParam::kFinalNorm);
  add_model_param(ModelParam::kLmHead);
  return specs;
}

bool IsDecoderMatrix(const LeafSpec& spec) { return spec.shape.size() == 2; }

DType DecoderMatrixDType(const std::vector<LeafSpec>& specs) {
  for (const LeafSpec& spec : specs) {
    if (IsDecoderMatrix(spec)) return spec.dtype;
  }
  return DType::kF32;
}

StatusOr<std::optional<DType>> ParseDTypeFlag(std::string_view flag) {
  if (flag == "auto") return std::optional<DType>();
  if (flag == DTypeFlagName(DType::kBF16)) return DType::kBF16;
  if (flag == DTypeFlagName(DType::kF32)) return DType::kF32;
  return InvalidArgumentError("dtype '" + std::string(flag) +
                              "' is not auto, bfloat16 or float32");
}

std::string_view DTypeFlagName(DType dtype) {
  return dtype == DType::kBF16 ? "bfloat16" : "float32";
}

StatusOr<DType> ResolveWeightDType(std::string_view flag,
                                   const ModelConfig& config) {
  ASSIGN_OR_RETURN(const std::optional<DType> chosen, ParseDTypeFlag(flag));
  if (chosen) return *chosen;
  return config.torch_dtype == DTypeFlagName(DType::kBF16) ? DType::kBF16
                                                           : DType::kF32;
}

int64_t ModelConfig::NumParams() const {
  int64_t n = 0;
  for (const LeafSpec& spec : LeafSpecsFor(*this)) n += spec.NumElements();
  return n;
}

}  // namespace rlrt
