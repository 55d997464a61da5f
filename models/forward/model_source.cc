#include "models/forward/model_source.h"

#include "models/forward/dummy_weights.h"
#include "models/io/checkpoint.h"

namespace rlrt {

StatusOr<LoadedModel> LoadModel(const ModelSource& source, Mesh* mesh) {
  const bool has_dir = !source.model_dir.empty();
  const bool has_preset = !source.preset.empty();
  if (has_dir == has_preset) {
    return InvalidArgumentError(
        "give exactly one of a model directory and a preset");
  }
  const std::string& format = source.load_format;
  if (format != "auto" && format != "dummy" && format != "safetensors") {
    return InvalidArgumentError("unknown load_format '" + format +
                                "' (expected auto, dummy or safetensors)");
  }
  if (has_preset && format == "safetensors") {
    return InvalidArgumentError(
        "preset '" + source.preset +
        "' has no weights to load; use load_format=dummy");
  }
  if (has_dir && format != "dummy") {
    ASSIGN_OR_RETURN(const ModelConfig config,
                     LoadModelConfig(source.model_dir));
    ASSIGN_OR_RETURN(const DType dtype,
                     ResolveWeightDType(source.dtype, config));
    ASSIGN_OR_RETURN(LoadedCheckpoint checkpoint,
                     LoadCheckpoint(source.model_dir, mesh, dtype));
    return LoadedModel{std::move(checkpoint.config),
                       std::move(checkpoint.leaves)};
  }
  ModelConfig config;
  if (has_dir) {
    ASSIGN_OR_RETURN(config, LoadModelConfig(source.model_dir));
  } else {
    ASSIGN_OR_RETURN(config, PresetConfig(source.preset));
  }
  ASSIGN_OR_RETURN(const DType dtype, ResolveWeightDType(source.dtype, config));
  ASSIGN_OR_RETURN(ParamLeaves weights,
                   ParamLeaves::Allocate(LeafSpecsFor(config, dtype)));
  RETURN_IF_ERROR(InitDummyWeights(weights, source.seed, mesh));
  return LoadedModel{std::move(config), std::move(weights)};
}

}  // namespace rlrt
