#include "models/lora/lora_adapter.h"

#include <cmath>

#include "models/leaf_init.h"

namespace rlrt {
namespace {

int ModuleSlot(LayerParam projection) {
  for (size_t i = 0; i < kLoraModules.size(); ++i) {
    if (kLoraModules[i] == projection) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

std::string LoraLeafName(int64_t layer, LayerParam projection, bool is_b) {
  return "base_model.model.model.layers." + std::to_string(layer) + "." +
         std::string(LoraModuleParent(projection)) + "." +
         std::string(LoraModuleName(projection)) +
         (is_b ? ".lora_B.weight" : ".lora_A.weight");
}

std::vector<LeafSpec> LoraLeafSpecs(const ModelConfig& model,
                                    const LoraConfig& lora) {
  std::vector<LeafSpec> specs;
  for (int64_t l = 0; l < model.num_hidden_layers; ++l) {
    for (LayerParam p : kLoraModules) {
      if (!lora.Targets(p)) continue;
      const auto [out, in] = ProjectionShape(model, p);
      specs.push_back(
          {LoraLeafName(l, p, false), {lora.rank, in}, DType::kF32});
      specs.push_back(
          {LoraLeafName(l, p, true), {out, lora.rank}, DType::kF32});
    }
  }
  return specs;
}

uint64_t LoraBaseShapeFingerprint(const ModelConfig& model) {
  FingerprintBuilder builder;
  const std::array<int64_t, 1> layers{model.num_hidden_layers};
  builder.Add("layers", layers, DType::kF32);
  for (LayerParam p : kLoraModules) {
    const std::array<int64_t, 2> shape = ProjectionShape(model, p);
    builder.Add(LoraModuleName(p), shape, DType::kF32);
  }
  return builder.Finish();
}

LoraAdapter::LoraAdapter(const LoraConfig& lora, ParamLeaves leaves)
    : config_(lora), leaves_(std::move(leaves)), scale_(lora.Scale()) {}

StatusOr<std::unique_ptr<LoraAdapter>> LoraAdapter::Create(
    const ModelConfig& model, const LoraConfig& lora, int64_t max_rank) {
  RETURN_IF_ERROR(ValidateLoraConfig(lora, max_rank));
  ASSIGN_OR_RETURN(ParamLeaves leaves,
                   ParamLeaves::Allocate(LoraLeafSpecs(model, lora)));
  std::unique_ptr<LoraAdapter> adapter(
      new LoraAdapter(lora, std::move(leaves)));
  adapter->base_fingerprint_ = LoraBaseShapeFingerprint(model);
  adapter->index_.resize(model.num_hidden_layers);
  int64_t next = 0;
  for (auto& slots : adapter->index_) {
    for (size_t m = 0; m < kLoraModules.size(); ++m) {
      slots[m] = lora.Targets(kLoraModules[m]) ? next : -1;
      if (slots[m] >= 0) next += 2;
    }
  }
  return adapter;
}

Status LoraAdapter::InitLikePeft(uint64_t seed, Mesh* mesh) {
  return FillDummy(leaves_, seed, mesh, [](const LeafSpec& spec) {
    DummyInit init;
    if (spec.name.ends_with(".lora_B.weight")) {
      init.kind = DummyInit::Kind::kConstant;
      init.value = 0.0f;
    } else {
      // U(-b, b) has standard deviation b / sqrt(3); b = 1 / sqrt(in).
      init.stddev = static_cast<float>(
          1.0 / std::sqrt(3.0 * static_cast<double>(spec.shape[1])));
    }
    return init;
  });
}

std::array<int64_t, 2> LoraAdapter::LeafIndices(int64_t layer,
                                                LayerParam projection) const {
  const int slot = ModuleSlot(projection);
  if (layer < 0 || layer >= num_layers() || slot < 0 ||
      index_[layer][slot] < 0) {
    return {-1, -1};
  }
  return {index_[layer][slot], index_[layer][slot] + 1};
}

LoraFactors LoraAdapter::Factors(int64_t layer, LayerParam projection) const {
  const auto [a, b] = LeafIndices(layer, projection);
  if (a < 0) return {};
  return {reinterpret_cast<const float*>(leaves_.data(a)),
          reinterpret_cast<const float*>(leaves_.data(b)), config_.rank,
          scale_};
}

}  // namespace rlrt
