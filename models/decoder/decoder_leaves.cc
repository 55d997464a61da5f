#include "models/decoder/decoder_leaves.h"

#include <string>

namespace rlrt {
namespace {

int64_t IndexOf(const ParamLeaves& leaves, const std::string& name) {
  const std::optional<size_t> i = leaves.Find(name);
  return i ? static_cast<int64_t>(*i) : -1;
}

template <typename Leaves>
auto* Data(Leaves& leaves, int64_t index) {
  using Float = decltype(leaves.F32(0).data());
  if (index < 0 || leaves.spec(index).dtype != DType::kF32) return Float{};
  return leaves.F32(index).data();
}

uint16_t* Bf16Data(ParamLeaves& leaves, int64_t index) {
  if (index < 0 || leaves.spec(index).dtype != DType::kBF16) return nullptr;
  return reinterpret_cast<uint16_t*>(leaves.data(index));
}

MatrixRef MatrixAt(const ParamLeaves& leaves, int64_t index) {
  if (index < 0) return MatrixRef();
  MatrixRef m;
  m.data = leaves.data(index);
  m.dtype = leaves.spec(index).dtype;
  return m;
}

}  // namespace

StatusOr<DecoderLeaves> DecoderLeaves::Resolve(const ModelConfig& config,
                                               const ParamLeaves& leaves) {
  RETURN_IF_ERROR(ValidateModelConfig(config));
  DecoderLeaves d;
  d.specs_f32_ = LeafSpecsFor(config);
  d.specs_bf16_ = LeafSpecsFor(config, DType::kBF16);
  d.fingerprint_f32_ = StructureFingerprint(d.specs_f32_);
  d.fingerprint_bf16_ = StructureFingerprint(d.specs_bf16_);
  RETURN_IF_ERROR(d.CheckStructure(leaves, "weights"));
  for (int p = 0; p < kNumModelParams; ++p) {
    d.model_[p] = IndexOf(
        leaves, std::string(ModelParamName(static_cast<ModelParam>(p))));
  }
  if (config.tie_word_embeddings) {
    d.model_[static_cast<int>(ModelParam::kLmHead)] =
        d.Index(ModelParam::kEmbedding);
  }
  d.layers_.resize(config.num_hidden_layers);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    for (int p = 0; p < kNumLayerParams; ++p) {
      d.layers_[l][p] =
          IndexOf(leaves, LayerParamName(l, static_cast<LayerParam>(p)));
    }
  }
  return d;
}

Status DecoderLeaves::CheckStructure(const ParamLeaves& other,
                                     std::string_view what) const {
  if (other.fingerprint() == fingerprint_f32_ ||
      other.fingerprint() == fingerprint_bf16_) {
    return OkStatus();
  }
  // Diff against the dtype the other list's matrices have, so a dtype
  // mismatch of one leaf is named rather than every matrix.
  const std::vector<LeafSpec>& expected =
      DecoderMatrixDType(other.specs()) == DType::kBF16 ? specs_bf16_
                                                        : specs_f32_;
  return InvalidArgumentError(std::string(what) +
                              " do not have the structure of this model:\n" +
                              DiffStructures(expected, other.specs()));
}

Status DecoderLeaves::CheckGradientStructure(const ParamLeaves& grads,
                                             std::string_view what) const {
  bool same = grads.size() == specs_f32_.size();
  for (size_t i = 0; same && i < grads.size(); ++i) {
    const LeafSpec& g = grads.spec(i);
    same = g.name == specs_f32_[i].name && g.shape == specs_f32_[i].shape &&
           (g.dtype == DType::kF32 || g.dtype == specs_bf16_[i].dtype);
  }
  if (same) return OkStatus();
  return InvalidArgumentError(std::string(what) +
                              " do not have the structure of this model "
                              "(each matrix F32 or BF16, vectors F32):\n" +
                              DiffStructures(specs_f32_, grads.specs()));
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
uint16_t* DecoderLeaves::GetBf16(ParamLeaves& leaves, ModelParam p) const {
  return Bf16Data(leaves, Index(p));
}
uint16_t* DecoderLeaves::GetBf16(ParamLeaves& leaves, int64_t layer,
                                 LayerParam p) const {
  return Bf16Data(leaves, Index(layer, p));
}
MatrixRef DecoderLeaves::Matrix(const ParamLeaves& leaves, ModelParam p) const {
  return MatrixAt(leaves, Index(p));
}
MatrixRef DecoderLeaves::Matrix(const ParamLeaves& leaves, int64_t layer,
                                LayerParam p) const {
  return MatrixAt(leaves, Index(layer, p));
}

}  // namespace rlrt
