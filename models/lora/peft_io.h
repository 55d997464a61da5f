// LoRA adapters on disk in PEFT's format: a directory holding
// adapter_config.json (lora_config.h) and adapter_model.safetensors with
// PEFT's tensor names (lora_adapter.h). Adapters written here load in PEFT
// (PeftModel.from_pretrained), and adapters PEFT writes load here.
#ifndef RLRT_MODELS_LORA_PEFT_IO_H_
#define RLRT_MODELS_LORA_PEFT_IO_H_

#include <filesystem>
#include <memory>

#include "base/status.h"
#include "models/config/model_config.h"
#include "models/lora/lora_adapter.h"

namespace rlrt {

inline constexpr char kAdapterConfigFile[] = "adapter_config.json";
inline constexpr char kAdapterWeightsFile[] = "adapter_model.safetensors";

// Reads the adapter in `dir` for a base of config `model`. Every tensor the
// config implies must be present with the shape this base needs (F32, BF16
// or F16; kept as float32), and nothing else: a missing, misshapen or
// extra tensor, a truncated file, a rank above `max_rank` or a module the
// base lacks is an error that names it (kInvalidArgument; kNotFound for a
// missing file; kDataLoss for a truncated one; kUnimplemented for PEFT features
// not run here).
StatusOr<std::unique_ptr<LoraAdapter>> LoadPeftAdapter(
    const std::filesystem::path& dir, const ModelConfig& model,
    int64_t max_rank = int64_t{1} << 16);

// Writes `adapter` into `dir` (created if missing) as float32. Each file is
// replaced atomically; the weights are written before the config.
Status SavePeftAdapter(const std::filesystem::path& dir,
                       const LoraAdapter& adapter);

}  // namespace rlrt

#endif  // RLRT_MODELS_LORA_PEFT_IO_H_
