// The parameters of a decoder (Qwen3, Qwen2, Llama): what each one is, its
// Hugging Face tensor name, its shape, and whether a config has it. This is
// the one place those names are spelled; the leaf structure
// (LeafSpecsFor), the checkpoint loader and the parameter map that the
// forward and backward passes read (models/decoder/decoder_leaves.h) all
// derive from it.
#ifndef RLRT_MODELS_CONFIG_DECODER_PARAMS_H_
#define RLRT_MODELS_CONFIG_DECODER_PARAMS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/config/model_config.h"

namespace rlrt {

// The parameters of one decoder layer.
enum class LayerParam : int {
  kInputNorm,
  kQProj,
  kQBias,  // Qwen2 only.
  kKProj,
  kKBias,  // Qwen2 only.
  kVProj,
  kVBias,  // Qwen2 only.
  kOProj,
  kQNorm,  // Qwen3 only.
  kKNorm,  // Qwen3 only.
  kPostNorm,
  kGateProj,
  kUpProj,
  kDownProj,
  kCount,
};
inline constexpr int kNumLayerParams = static_cast<int>(LayerParam::kCount);

// The parameters outside the layers. kLmHead is absent with tied
// embeddings (the LM head then reads the embedding).
enum class ModelParam : int { kEmbedding, kFinalNorm, kLmHead, kCount };
inline constexpr int kNumModelParams = static_cast<int>(ModelParam::kCount);

// The layer's parameters in the order of a PyTorch state_dict.
extern const std::array<LayerParam, kNumLayerParams>
    kLayerParamsInStateDictOrder;

// "self_attn.q_proj.weight": the name under "model.layers.<i>.".
std::string_view LayerParamSuffix(LayerParam p);
// "model.layers.<layer>.self_attn.q_proj.weight".
std::string LayerParamName(int64_t layer, LayerParam p);
// "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight".
std::string_view ModelParamName(ModelParam p);

// Whether a model of this config has the parameter, and its shape.
bool HasLayerParam(const ModelConfig& config, LayerParam p);
bool HasModelParam(const ModelConfig& config, ModelParam p);
std::vector<int64_t> LayerParamShape(const ModelConfig& config, LayerParam p);
// {out, in} of a projection (kQProj ... kDownProj; {0, 0} for the others),
// without allocating: the forward pass asks per call.
std::array<int64_t, 2> ProjectionShape(const ModelConfig& config, LayerParam p);
std::vector<int64_t> ModelParamShape(const ModelConfig& config, ModelParam p);

}  // namespace rlrt

#endif  // RLRT_MODELS_CONFIG_DECODER_PARAMS_H_
