#include "models/config/decoder_params.h"

namespace rlrt {
namespace {

// In LayerParam order.
constexpr std::string_view kLayerParamSuffixes[] = {
    "input_layernorm.weight",
    "self_attn.q_proj.weight",
    "self_attn.q_proj.bias",
    "self_attn.k_proj.weight",
    "self_attn.k_proj.bias",
    "self_attn.v_proj.weight",
    "self_attn.v_proj.bias",
    "self_attn.o_proj.weight",
    "self_attn.q_norm.weight",
    "self_attn.k_norm.weight",
    "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
};
static_assert(std::size(kLayerParamSuffixes) == kNumLayerParams);

// In ModelParam order.
constexpr std::string_view kModelParamNames[] = {
    "model.embed_tokens.weight",
    "model.norm.weight",
    "lm_head.weight",
};
static_assert(std::size(kModelParamNames) == kNumModelParams);

}  // namespace

const std::array<LayerParam, kNumLayerParams> kLayerParamsInStateDictOrder = {
    LayerParam::kQProj,     LayerParam::kQBias,    LayerParam::kKProj,
    LayerParam::kKBias,     LayerParam::kVProj,    LayerParam::kVBias,
    LayerParam::kOProj,     LayerParam::kQNorm,    LayerParam::kKNorm,
    LayerParam::kGateProj,  LayerParam::kUpProj,   LayerParam::kDownProj,
    LayerParam::kInputNorm, LayerParam::kPostNorm,
};

std::string_view LayerParamSuffix(LayerParam p) {
  return kLayerParamSuffixes[static_cast<int>(p)];
}

std::string LayerParamName(int64_t layer, LayerParam p) {
  return "model.layers." + std::to_string(layer) + "." +
         std::string(LayerParamSuffix(p));
}

std::string_view ModelParamName(ModelParam p) {
  return kModelParamNames[static_cast<int>(p)];
}

bool HasLayerParam(const ModelConfig& config, LayerParam p) {
  switch (p) {
    case LayerParam::kQBias:
    case LayerParam::kKBias:
    case LayerParam::kVBias:
      return config.attention_bias;
    case LayerParam::kQNorm:
    case LayerParam::kKNorm:
      return config.qk_norm;
    default:
      return true;
  }
}

bool HasModelParam(const ModelConfig& config, ModelParam p) {
  return p != ModelParam::kLmHead || !config.tie_word_embeddings;
}

std::vector<int64_t> LayerParamShape(const ModelConfig& c, LayerParam p) {
  switch (p) {
    case LayerParam::kInputNorm:
    case LayerParam::kPostNorm:
      return {c.hidden_size};
    case LayerParam::kQBias:
      return {c.q_dim()};
    case LayerParam::kKBias:
    case LayerParam::kVBias:
      return {c.kv_dim()};
    case LayerParam::kQNorm:
    case LayerParam::kKNorm:
      return {c.head_dim};
    case LayerParam::kCount:
      return {};
    default: {
      const std::array<int64_t, 2> shape = ProjectionShape(c, p);
      return {shape[0], shape[1]};
    }
  }
}

std::array<int64_t, 2> ProjectionShape(const ModelConfig& c, LayerParam p) {
  const int64_t h = c.hidden_size;
  switch (p) {
    case LayerParam::kQProj:
      return {c.q_dim(), h};
    case LayerParam::kKProj:
    case LayerParam::kVProj:
      return {c.kv_dim(), h};
    case LayerParam::kOProj:
      return {h, c.q_dim()};
    case LayerParam::kGateProj:
    case LayerParam::kUpProj:
      return {c.intermediate_size, h};
    case LayerParam::kDownProj:
      return {h, c.intermediate_size};
    default:
      return {0, 0};
  }
}

std::vector<int64_t> ModelParamShape(const ModelConfig& c, ModelParam p) {
  if (p == ModelParam::kFinalNorm) return {c.hidden_size};
  return {c.vocab_size, c.hidden_size};
}

}  // namespace rlrt
