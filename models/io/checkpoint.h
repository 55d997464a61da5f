// Hugging Face checkpoint directories: config.json plus either one
// model.safetensors or shards listed by model.safetensors.index.json.
#ifndef RLRT_MODELS_IO_CHECKPOINT_H_
#define RLRT_MODELS_IO_CHECKPOINT_H_

#include <cstddef>
#include <filesystem>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/config/model_config.h"
#include "models/dtype.h"
#include "models/io/safetensors.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

inline constexpr char kSafetensorsFileName[] = "model.safetensors";
inline constexpr char kSafetensorsIndexFileName[] =
    "model.safetensors.index.json";

struct LoadedCheckpoint {
  ModelConfig config;
  ParamLeaves leaves;  // LeafSpecsFor(config, matrix_dtype).
};

// Reads config.json and allocates and fills the leaves, whose matrices get
// `matrix_dtype`. mesh may be null.
StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::filesystem::path& dir,
                                          Mesh* mesh = nullptr,
                                          DType matrix_dtype = DType::kF32);

// Fills existing leaves, whose structure must be LeafSpecsFor of the
// directory's config.json (matrices F32 or BF16). As transformers does, a
// model.safetensors takes precedence over an index. Every file and tensor is
// validated first: each leaf present exactly once, with its shape and an
// F32/BF16/F16 dtype; no other tensors except "*rotary_emb.inv_freq" buffers
// (recomputed, never loaded) and, for tied embeddings, an lm_head.weight equal
// to model.embed_tokens.weight after conversion to F32. Only then is data
// copied (same dtype) or converted into the leaves (widened exactly, or
// rounded to nearest even into BF16 leaves), split across the mesh's
// workers. On any error the leaves are unchanged, and the message
// names the file and the tensor.
Status LoadCheckpointInto(const std::filesystem::path& dir, ParamLeaves& leaves,
                          Mesh* mesh = nullptr);

struct SaveCheckpointOptions {
  // Above this many bytes of tensor data the weights are split into
  // model-0000i-of-0000N.safetensors shards, each at most this large unless
  // a single tensor is larger (it then gets a shard of its own).
  size_t max_shard_bytes = size_t{2} << 30;
  // Storage dtype: F32 (exact) or BF16 (rounded to nearest even).
  DType dtype = DType::kF32;
};

// Writes config.json (torch_dtype set to the storage dtype) and the weights,
// named as transformers' save_pretrained names them; tied configs write no
// lm_head.weight. Every file is written to a temporary name and renamed into
// place; weight files of an earlier save in the other layout (single file vs
// shards, or a different shard count) are removed afterwards so transformers
// cannot pick up stale weights. The leaves must be LeafSpecsFor(config).
Status SaveCheckpoint(const ParamLeaves& leaves, const ModelConfig& config,
                      const std::filesystem::path& dir,
                      const SaveCheckpointOptions& options = {});

// Every leaf as it is stored (name with `prefix` in front, dtype, shape,
// bytes), to give to WriteSafetensors: for state beside a checkpoint
// (optimizer moments, a KL reference, gradient dumps). The spans point into
// `leaves`, which must outlive the result.
std::vector<SafetensorsTensorData> LeafTensors(const ParamLeaves& leaves,
                                               std::string_view prefix = "");

}  // namespace rlrt

#endif  // RLRT_MODELS_IO_CHECKPOINT_H_
