// What a LoRA adapter is (PEFT's LoraConfig, the subset we run): its rank,
// alpha and scale rule, and which of a decoder layer's seven projections it
// adapts. Read from and written to PEFT's adapter_config.json.
#ifndef RLRT_MODELS_LORA_LORA_CONFIG_H_
#define RLRT_MODELS_LORA_LORA_CONFIG_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "models/config/decoder_params.h"

namespace rlrt {

// The projections an adapter may target, in the order of its leaves.
inline constexpr std::array<LayerParam, 7> kLoraModules = {
    LayerParam::kQProj,   LayerParam::kKProj,    LayerParam::kVProj,
    LayerParam::kOProj,   LayerParam::kGateProj, LayerParam::kUpProj,
    LayerParam::kDownProj};
inline constexpr uint32_t kAllLoraModules = (1u << kLoraModules.size()) - 1;

// "q_proj", ..., "down_proj" (PEFT's target module names); empty for other
// parameters.
std::string_view LoraModuleName(LayerParam projection);
// "self_attn" or "mlp": the submodule a projection sits in.
std::string_view LoraModuleParent(LayerParam projection);

struct LoraConfig {
  int64_t rank = 16;  // PEFT's r
  double alpha = 32;  // PEFT's lora_alpha
  // rsLoRA (Kalajdzievski, 2023): scale alpha / sqrt(rank), not alpha / rank.
  bool use_rslora = false;
  // Bit i set: kLoraModules[i] is adapted.
  uint32_t target_mask = kAllLoraModules;
  // Kept for the file; training here runs without dropout.
  double dropout = 0.0;
  std::string base_model_name_or_path{};

  bool Targets(LayerParam projection) const;
  // s in y += s (x A^T) B^T, rounded to float once, as PyTorch multiplies
  // a float32 tensor by a Python float.
  float Scale() const;
};

// Whether adapters of configs a and b compute alike given the same leaves:
// same rank, targets and scale (dropout and the base's name aside).
bool SameLoraShapeAndScale(const LoraConfig& a, const LoraConfig& b);

// Rank in [1, max_rank], alpha finite and positive, dropout in [0, 1), at
// least one module.
Status ValidateLoraConfig(const LoraConfig& config, int64_t max_rank);

// The --lora_target_modules flag: comma-separated module names
// ("q_proj,v_proj"), or "all" / "all-linear" for the seven.
StatusOr<uint32_t> ParseLoraTargetModules(std::string_view text);
// "q_proj,v_proj": the inverse of ParseLoraTargetModules.
std::string LoraTargetModulesString(uint32_t mask);

// adapter_config.json as PEFT writes it. Refuses (kUnimplemented, naming the
// field) what the forward does not run: DoRA, per-module rank or alpha
// patterns, layer subsets, biases, fan_in_fan_out, modules_to_save,
// regex target_modules; refuses (kInvalidArgument) malformed files and
// target modules a decoder layer does not have. Bounded: at most
// kMaxAdapterConfigBytes and kMaxJsonDepth levels.
inline constexpr size_t kMaxAdapterConfigBytes = 1 << 20;
StatusOr<LoraConfig> LoraConfigFromJson(std::string_view text);
std::string LoraConfigToJson(const LoraConfig& config);

}  // namespace rlrt

#endif  // RLRT_MODELS_LORA_LORA_CONFIG_H_
