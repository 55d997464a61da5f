// A LoRA adapter's weights: a leaf list of its own (float32, PEFT's tensor
// names, fixed structure, version), beside a base model it leaves
// untouched. For each layer and each targeted projection p, in layer order
// and then kLoraModules order:
//   base_model.model.model.layers.<i>.<self_attn|mlp>.<p>.lora_A.weight  [r,
//   in] base_model.model.model.layers.<i>.<self_attn|mlp>.<p>.lora_B.weight
//   [out, r]
// Gradients and optimizer state are leaf lists of the same structure;
// LeafIndices() addresses them.
#ifndef RLRT_MODELS_LORA_LORA_ADAPTER_H_
#define RLRT_MODELS_LORA_LORA_ADAPTER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "models/config/model_config.h"
#include "models/leaf_spec.h"
#include "models/lora/lora_config.h"
#include "models/ops/lora_linear.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight".
std::string LoraLeafName(int64_t layer, LayerParam projection, bool is_b);
std::vector<LeafSpec> LoraLeafSpecs(const ModelConfig& model,
                                    const LoraConfig& lora);

// Summarises what an adapter's shapes depend on in a base model (layer
// count and projection shapes), so a forward can check in O(1) that an
// adapter was made for its model.
uint64_t LoraBaseShapeFingerprint(const ModelConfig& model);

class LoraAdapter {
 public:
  // Zero-filled (the adapter then changes nothing); `max_rank` bounds the
  // rank. Fails on an invalid config.
  static StatusOr<std::unique_ptr<LoraAdapter>> Create(
      const ModelConfig& model, const LoraConfig& lora,
      int64_t max_rank = int64_t{1} << 16);

  // PEFT's initialisation: A uniform in +-1/sqrt(in) (kaiming-uniform with
  // a = sqrt(5)), B zero, so the adapted model starts equal to the base.
  // Seeded and identical for any worker count.
  Status InitLikePeft(uint64_t seed, Mesh* mesh = nullptr);

  const LoraConfig& config() const { return config_; }
  ParamLeaves& leaves() { return leaves_; }
  const ParamLeaves& leaves() const { return leaves_; }
  int64_t rank() const { return config_.rank; }
  float scale() const { return scale_; }
  int64_t num_layers() const { return static_cast<int64_t>(index_.size()); }
  uint64_t base_shape_fingerprint() const { return base_fingerprint_; }

  // The factors the forward reads; rank 0 when `projection` is not adapted.
  LoraFactors Factors(int64_t layer, LayerParam projection) const;
  // {A, B} leaf indices of (layer, projection), {-1, -1} when not adapted.
  std::array<int64_t, 2> LeafIndices(int64_t layer,
                                     LayerParam projection) const;

 private:
  LoraAdapter(const LoraConfig& lora, ParamLeaves leaves);

  const LoraConfig config_;
  ParamLeaves leaves_;
  const float scale_;
  uint64_t base_fingerprint_ = 0;
  // [layer][module in kLoraModules order] -> A's leaf index, or -1.
  std::vector<std::array<int64_t, kLoraModules.size()>> index_;
};

}  // namespace rlrt

#endif  // RLRT_MODELS_LORA_LORA_ADAPTER_H_
