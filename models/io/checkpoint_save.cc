// Saving leaf lists as Hugging Face checkpoints.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "models/io/atomic_file.h"
#include "models/io/checkpoint.h"
#include "models/io/safetensors.h"
#include "models/leaf_spec.h"

namespace rlrt {
namespace {

// transformers' name for shard i (1-based) of n.
std::string ShardName(size_t i, size_t n) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i, n);
  return name;
}

// Matches ShardName's output for any i and n.
bool LooksLikeShardName(std::string_view name) {
  constexpr std::string_view kPattern = "model-#####-of-#####.safetensors";
  if (name.size() != kPattern.size()) return false;
  for (size_t k = 0; k < name.size(); ++k) {
    const bool digit = name[k] >= '0' && name[k] <= '9';
    if (kPattern[k] == '#' ? !digit : name[k] != kPattern[k]) return false;
  }
  return true;
}

// Consecutive leaves, in order, grouped so no shard exceeds max_bytes unless
// one leaf alone does (transformers' rule, minus its reordering of oversized
// tensors: keeping list order keeps shards readable in order).
std::vector<std::vector<size_t>> PlanShards(const ParamLeaves& leaves,
                                            DType dtype, size_t max_bytes) {
  std::vector<std::vector<size_t>> shards;
  std::vector<size_t> current;
  size_t current_bytes = 0;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const size_t bytes =
        static_cast<size_t>(leaves.spec(i).NumElements()) * DTypeSize(dtype);
    if (!current.empty() && current_bytes + bytes > max_bytes) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(i);
    current_bytes += bytes;
  }
  if (!current.empty()) shards.push_back(std::move(current));
  return shards;
}

// Writes the given leaves as one safetensors file, converting to BF16 into a
// buffer that lives only while this shard is written.
Status WriteShard(const ParamLeaves& leaves, const std::vector<size_t>& shard,
                  DType dtype, const std::filesystem::path& path) {
  // Leaves already in the storage dtype are written as they are; others
  // (F32 leaves saved as BF16, norm vectors of a BF16 model, BF16 leaves
  // saved as F32) are converted into this buffer first.
  size_t converted_bytes = 0;
  for (size_t i : shard) {
    if (leaves.spec(i).dtype != dtype) {
      converted_bytes += leaves.spec(i).NumElements() * DTypeSize(dtype);
    }
  }
  std::vector<std::byte> converted(converted_bytes);
  std::vector<SafetensorsTensorData> tensors;
  tensors.reserve(shard.size());
  size_t at = 0;
  for (size_t i : shard) {
    const LeafSpec& spec = leaves.spec(i);
    std::span<const std::byte> data(leaves.data(i), leaves.bytes(i));
    if (spec.dtype != dtype) {
      const size_t n = static_cast<size_t>(spec.NumElements());
      std::byte* dst = converted.data() + at;
      for (size_t k = 0; k < n; ++k) {
        StoreFromF32(dst, dtype, k, LoadAsF32(leaves.data(i), spec.dtype, k));
      }
      data = std::span<const std::byte>(dst, n * DTypeSize(dtype));
      at += n * DTypeSize(dtype);
    }
    tensors.push_back({spec.name, dtype, spec.shape, data});
  }
  // transformers refuses safetensors files whose format is not declared.
  return WriteSafetensors(path, tensors, {{"format", "pt"}});
}

std::string IndexJson(const ParamLeaves& leaves,
                      const std::vector<std::vector<size_t>>& shards,
                      DType dtype) {
  // nlohmann::json sorts keys, as transformers' json.dumps(sort_keys=True).
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    for (size_t i : shards[s]) {
      weight_map[leaves.spec(i).name] = ShardName(s + 1, shards.size());
      total += leaves.spec(i).NumElements() * DTypeSize(dtype);
    }
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}},
                          {"weight_map", weight_map}};
  return index.dump(2) + "\n";
}

// Removes weight files of earlier saves that the new layout does not use:
// transformers prefers model.safetensors over an index, and would find old
// shards through an old index.
Status RemoveStaleWeights(const std::filesystem::path& dir,
                          const std::set<std::string>& keep) {
  std::error_code ec;
  std::vector<std::filesystem::path> stale;
  // The error_code forms throughout: the throwing ones must not escape.
  std::filesystem::directory_iterator it(dir, ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool ours = name == kSafetensorsFileName ||
                      name == kSafetensorsIndexFileName ||
                      LooksLikeShardName(name);
    if (ours && !keep.contains(name)) stale.push_back(it->path());
  }
  if (ec) {
    return UnavailableError("cannot list " + dir.string() + ": " +
                            ec.message());
  }
  for (const auto& path : stale) {
    if (!std::filesystem::remove(path, ec) && ec) {
      return UnavailableError("cannot remove stale " + path.string() + ": " +
                              ec.message());
    }
  }
  return OkStatus();
}

}  // namespace

Status SaveCheckpoint(const ParamLeaves& leaves, const ModelConfig& config,
                      const std::filesystem::path& dir,
                      const SaveCheckpointOptions& options) {
  RETURN_IF_ERROR(ValidateModelConfig(config));
  const std::vector<LeafSpec> expected =
      LeafSpecsFor(config, DecoderMatrixDType(leaves.specs()));
  if (leaves.specs() != expected) {
    return FailedPreconditionError(
        "the leaf list does not have the structure of the config:\n" +
        DiffStructures(expected, leaves.specs()));
  }
  if (options.dtype != DType::kF32 && options.dtype != DType::kBF16) {
    return InvalidArgumentError("checkpoints are saved as F32 or BF16, not " +
                                std::string(DTypeName(options.dtype)));
  }
  if (options.max_shard_bytes == 0) {
    return InvalidArgumentError("max_shard_bytes must be positive");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return UnavailableError("cannot create " + dir.string() + ": " +
                            ec.message());
  }

  const auto shards =
      PlanShards(leaves, options.dtype, options.max_shard_bytes);
  std::set<std::string> written;
  if (shards.size() <= 1) {
    RETURN_IF_ERROR(
        WriteShard(leaves, shards.empty() ? std::vector<size_t>{} : shards[0],
                   options.dtype, dir / kSafetensorsFileName));
    written.insert(kSafetensorsFileName);
  } else {
    for (size_t s = 0; s < shards.size(); ++s) {
      const std::string name = ShardName(s + 1, shards.size());
      RETURN_IF_ERROR(WriteShard(leaves, shards[s], options.dtype, dir / name));
      written.insert(name);
    }
    RETURN_IF_ERROR(
        WriteFileAtomically(dir / kSafetensorsIndexFileName,
                            IndexJson(leaves, shards, options.dtype)));
    written.insert(kSafetensorsIndexFileName);
  }

  ModelConfig saved = config;
  saved.torch_dtype = DTypeFlagName(options.dtype);
  RETURN_IF_ERROR(
      WriteFileAtomically(dir / "config.json", ModelConfigToJson(saved)));
  return RemoveStaleWeights(dir, written);
}

std::vector<SafetensorsTensorData> LeafTensors(const ParamLeaves& leaves,
                                               std::string_view prefix) {
  std::vector<SafetensorsTensorData> tensors;
  tensors.reserve(leaves.size());
  for (size_t i = 0; i < leaves.size(); ++i) {
    const LeafSpec& spec = leaves.spec(i);
    tensors.push_back(
        {std::string(prefix) + spec.name, spec.dtype, spec.shape,
         std::span<const std::byte>(leaves.data(i), leaves.bytes(i))});
  }
  return tensors;
}

}  // namespace rlrt
