// Internal to checkpoint loading: the weight files of a checkpoint directory,
// opened, validated and cross-checked against the shard index, with every
// tensor findable by name.
#ifndef RLRT_MODELS_IO_CHECKPOINT_FILES_H_
#define RLRT_MODELS_IO_CHECKPOINT_FILES_H_

#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "models/io/safetensors.h"

namespace rlrt {

struct CheckpointTensor {
  const SafetensorsTensor* tensor = nullptr;
  const SafetensorsFile* file = nullptr;
};

struct CheckpointFiles {
  // What the tensors came from, for error messages: the single file, or the
  // index of a sharded checkpoint.
  std::filesystem::path source;
  // Moving the vector keeps the files (and so the pointers below) in place.
  std::vector<SafetensorsFile> files;
  std::unordered_map<std::string, CheckpointTensor> tensors;
};

// Opens dir/model.safetensors or, failing that, every shard named by
// dir/model.safetensors.index.json. With an index, each shard tensor must be
// listed under that shard and each listed tensor must be in its shard; a
// tensor name in two files is refused either way.
StatusOr<CheckpointFiles> OpenCheckpointFiles(const std::filesystem::path& dir);

}  // namespace rlrt

#endif  // RLRT_MODELS_IO_CHECKPOINT_FILES_H_
