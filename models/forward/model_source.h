// Where a model's config and weights come from, as the command-line tools
// and the engine name it: a Hugging Face checkpoint directory or a built-in
// preset, loaded from safetensors or initialised with dummy weights.
#ifndef RLRT_MODELS_FORWARD_MODEL_SOURCE_H_
#define RLRT_MODELS_FORWARD_MODEL_SOURCE_H_

#include <cstdint>
#include <string>

#include "base/status.h"
#include "models/config/model_config.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

struct ModelSource {
  std::string
      model_dir;       // A checkpoint directory (config.json, *.safetensors).
  std::string preset;  // Or a preset name (see PresetNames()).
  // "safetensors", "dummy", or "auto": safetensors for a directory, dummy for
  // a preset.
  std::string load_format = "auto";
  uint64_t seed = 0;  // For dummy weights.
  // The matrices' dtype: "auto" (the config's torch_dtype), "bfloat16" or
  // "float32". See ResolveWeightDType.
  std::string dtype = "auto";
};

struct LoadedModel {
  ModelConfig config;
  ParamLeaves weights;
};

// Exactly one of model_dir and preset must be set; presets have no weights
// to load, so only "dummy" (or "auto") goes with them.
StatusOr<LoadedModel> LoadModel(const ModelSource& source, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_FORWARD_MODEL_SOURCE_H_
