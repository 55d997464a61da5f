#include "models/lora/peft_io.h"

#include <string>
#include <vector>

#include "models/dtype.h"
#include "models/io/atomic_file.h"
#include "models/io/safetensors.h"
#include "models/io/small_file.h"

namespace rlrt {
namespace {

// Copies `tensor` into the float32 leaf `into`, converting from its dtype.
void CopyAsF32(const SafetensorsTensor& tensor, std::span<float> into) {
  if (tensor.dtype == DType::kF32) {
    std::memcpy(into.data(), tensor.data.data(), into.size() * sizeof(float));
    return;
  }
  for (size_t i = 0; i < into.size(); ++i) {
    uint16_t bits;
    std::memcpy(&bits, tensor.data.data() + 2 * i, 2);
    into[i] = tensor.dtype == DType::kBF16 ? Bf16ToF32(bits) : F16ToF32(bits);
  }
}

}  // namespace

StatusOr<std::unique_ptr<LoraAdapter>> LoadPeftAdapter(
    const std::filesystem::path& dir, const ModelConfig& model,
    int64_t max_rank) {
  ASSIGN_OR_RETURN(std::string text,
                   ReadSmallFile(dir / kAdapterConfigFile,
                                 kMaxAdapterConfigBytes, "an adapter config"));
  ASSIGN_OR_RETURN(LoraConfig config, LoraConfigFromJson(text));
  if (config.rank > max_rank) {
    return InvalidArgumentError("adapter rank " + std::to_string(config.rank) +
                                " exceeds the limit of " +
                                std::to_string(max_rank));
  }
  const std::filesystem::path weights_path = dir / kAdapterWeightsFile;
  if (!std::filesystem::exists(weights_path)) {
    return NotFoundError(weights_path.string() + " does not exist");
  }
  ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(weights_path));
  ASSIGN_OR_RETURN(std::unique_ptr<LoraAdapter> adapter,
                   LoraAdapter::Create(model, config, max_rank));
  ParamLeaves& leaves = adapter->leaves();
  // Every expected tensor, with this base's shapes.
  for (size_t i = 0; i < leaves.size(); ++i) {
    const LeafSpec& spec = leaves.spec(i);
    const SafetensorsTensor* tensor = file.Find(spec.name);
    if (tensor == nullptr) {
      return InvalidArgumentError(weights_path.string() + " lacks '" +
                                  spec.name +
                                  "', which adapter_config.json's "
                                  "target_modules and this base imply");
    }
    if (tensor->shape != spec.shape) {
      return InvalidArgumentError(
          weights_path.string() + ": '" + spec.name + "' is " +
          ShapeToString(tensor->shape) + ", this base needs " +
          ShapeToString(spec.shape) + " (an adapter for another model?)");
    }
  }
  // Nothing else: an extra tensor is an adapter for a larger model or with
  // features (biases, embeddings, saved modules) that would be dropped.
  if (file.tensors().size() != leaves.size()) {
    for (const SafetensorsTensor& tensor : file.tensors()) {
      if (!leaves.Find(tensor.name)) {
        return InvalidArgumentError(
            weights_path.string() + ": tensor '" + tensor.name +
            "' has no place in this adapter (base with " +
            std::to_string(model.num_hidden_layers) + " layers, modules " +
            LoraTargetModulesString(config.target_mask) + ")");
      }
    }
  }
  for (size_t i = 0; i < leaves.size(); ++i) {
    CopyAsF32(*file.Find(leaves.spec(i).name), leaves.F32(i));
  }
  return adapter;
}

Status SavePeftAdapter(const std::filesystem::path& dir,
                       const LoraAdapter& adapter) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return InternalError("cannot create " + dir.string() + ": " + ec.message());
  }
  const ParamLeaves& leaves = adapter.leaves();
  std::vector<SafetensorsTensorData> tensors;
  tensors.reserve(leaves.size());
  for (size_t i = 0; i < leaves.size(); ++i) {
    tensors.push_back({leaves.spec(i).name, DType::kF32, leaves.spec(i).shape,
                       std::span(leaves.data(i), leaves.bytes(i))});
  }
  RETURN_IF_ERROR(
      WriteSafetensors(dir / kAdapterWeightsFile, tensors, {{"format", "pt"}}));
  return WriteFileAtomically(dir / kAdapterConfigFile,
                             LoraConfigToJson(adapter.config()));
}

}  // namespace rlrt
