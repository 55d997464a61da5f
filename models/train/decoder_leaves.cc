#include "models/train/decoder_leaves.h"

#include <string>

namespace rlrt {
namespace {

// Leaf name suffixes under "model.layers.<i>.", in LayerParam order.
constexpr std::string_view kLayerParamNames[] = {
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
static_assert(std::size(kLayerParamNames) ==
              static_cast<size_t>(LayerParam::kCount));

int64_t IndexOf(const ParamLeaves& leaves, const std::string& name) {
  const std::optional<size_t> i = leaves.Find(name);
  return i ? static_cast<int64_t>(*i) : -1;
}

template <typename Leaves>
auto* Data(Leaves& leaves, int64_t index) {
  using Float = decltype(leaves.F32(0).data());
  return index < 0 ? Float{nullptr} : leaves.F32(index).data();
}

}  // namespace

StatusOr<DecoderLeaves> DecoderLeaves::Resolve(const ModelConfig& config,
                                               const ParamLeaves& leaves) {
  RETURN_IF_ERROR(ValidateModelConfig(config));
  DecoderLeaves d;
  d.specs_ = LeafSpecsFor(config);
  d.fingerprint_ = StructureFingerprint(d.specs_);
  RETURN_IF_ERROR(d.CheckStructure(leaves, "weights"));
  d.model_[static_cast<int>(ModelParam::kEmbedding)] =
      IndexOf(leaves, "model.embed_tokens.weight");
  d.model_[static_cast<int>(ModelParam::kFinalNorm)] =
      IndexOf(leaves, "model.norm.weight");
  d.model_[static_cast<int>(ModelParam::kLmHead)] =
      config.tie_word_embeddings ? d.Index(ModelParam::kEmbedding)
                                 : IndexOf(leaves, "lm_head.weight");
  d.layers_.resize(config.num_hidden_layers);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    for (int p = 0; p < kLayerParams; ++p) {
      d.layers_[l][p] =
          IndexOf(leaves, prefix + std::string(kLayerParamNames[p]));
    }
  }
  return d;
}

Status DecoderLeaves::CheckStructure(const ParamLeaves& other,
                                     std::string_view what) const {
  if (other.fingerprint() == fingerprint_) return OkStatus();
  return InvalidArgumentError(std::string(what) +
                              " do not have the structure of this model:\n" +
                              DiffStructures(specs_, other.specs()));
}

const float* DecoderLeaves::Get(const ParamLeaves& leaves, ModelParam p) const {
  return Data(leaves, Index(p));
}
float* DecoderLeaves::Get(ParamLeaves& leaves, ModelParam p) const {
  return Data(leaves, Index(p));
}
const float* DecoderLeaves::Get(const ParamLeaves& leaves, int64_t layer,
                                LayerParam p) const {
  return Data(leaves, Index(layer, p));
}
float* DecoderLeaves::Get(ParamLeaves& leaves, int64_t layer,
                          LayerParam p) const {
  return Data(leaves, Index(layer, p));
}

}  // namespace rlrt
