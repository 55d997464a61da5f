// Loading checkpoints into leaf lists: validate everything, then convert.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "models/config/decoder_params.h"
#include "models/io/checkpoint.h"
#include "models/io/checkpoint_files.h"
#include "models/leaf_copy.h"
#include "models/leaf_spec.h"
#include "partition/parallel.h"

namespace rlrt {
namespace {

std::string TiedHeadName() {
  return std::string(ModelParamName(ModelParam::kLmHead));
}
std::string EmbeddingName() {
  return std::string(ModelParamName(ModelParam::kEmbedding));
}

bool IsIgnoredBuffer(std::string_view name) {
  // Older checkpoints saved the rotary inverse frequencies, which are a
  // function of the config and are recomputed, as transformers does.
  return name.ends_with("rotary_emb.inv_freq");
}

// Converts elements [first, first + count) of a tensor to F32. The source
// may be unaligned (safetensors only aligns the data section), hence memcpy.
void ConvertToF32(const SafetensorsTensor& src, size_t first, size_t count,
                  float* out) {
  const std::byte* p = src.data.data() + first * DTypeSize(src.dtype);
  switch (src.dtype) {
    case DType::kF32:
      std::memcpy(out, p, count * sizeof(float));
      return;
    case DType::kBF16:
      for (size_t k = 0; k < count; ++k) {
        uint16_t bits;
        std::memcpy(&bits, p + 2 * k, 2);
        out[k] = Bf16ToF32(bits);
      }
      return;
    case DType::kF16:
      for (size_t k = 0; k < count; ++k) {
        uint16_t bits;
        std::memcpy(&bits, p + 2 * k, 2);
        out[k] = F16ToF32(bits);
      }
      return;
  }
}

// True when both tensors hold the same F32 bit patterns after conversion.
bool SameAfterConversion(const SafetensorsTensor& a,
                         const SafetensorsTensor& b) {
  if (a.NumElements() != b.NumElements()) return false;
  if (a.dtype == b.dtype) {
    return std::memcmp(a.data.data(), b.data.data(), a.data.size()) == 0;
  }
  constexpr size_t kBlock = 1024;
  float x[kBlock], y[kBlock];
  const size_t n = static_cast<size_t>(a.NumElements());
  for (size_t i = 0; i < n; i += kBlock) {
    const size_t m = std::min(kBlock, n - i);
    ConvertToF32(a, i, m, x);
    ConvertToF32(b, i, m, y);
    if (std::memcmp(x, y, m * sizeof(float)) != 0) return false;
  }
  return true;
}

Status CheckTiedHead(const CheckpointTensor& head,
                     const CheckpointFiles& files) {
  const std::string where =
      head.file->path().string() + ": tensor '" + TiedHeadName() + "': ";
  auto embed = files.tensors.find(EmbeddingName());
  if (embed == files.tensors.end()) return OkStatus();  // Reported as missing.
  if (head.tensor->shape != embed->second.tensor->shape) {
    return InvalidArgumentError(
        where + "present although tie_word_embeddings is true, with shape " +
        ShapeToString(head.tensor->shape) + " unlike " + EmbeddingName() + " " +
        ShapeToString(embed->second.tensor->shape));
  }
  if (!SameAfterConversion(*head.tensor, *embed->second.tensor)) {
    return InvalidArgumentError(
        where + "present although tie_word_embeddings is true, and differs " +
        "from " + EmbeddingName() + " (a tied model has one matrix for both)");
  }
  return OkStatus();
}

// Checks every tensor against the leaves and returns, for each leaf, the
// tensor that fills it.
StatusOr<std::vector<const SafetensorsTensor*>> MatchTensorsToLeaves(
    const CheckpointFiles& files, const ModelConfig& config,
    const ParamLeaves& leaves) {
  std::vector<const SafetensorsTensor*> sources(leaves.size(), nullptr);
  for (size_t i = 0; i < leaves.size(); ++i) {
    const LeafSpec& spec = leaves.spec(i);
    auto it = files.tensors.find(spec.name);
    if (it == files.tensors.end()) {
      return NotFoundError(files.source.string() + ": missing tensor '" +
                           spec.name + "' (expected shape " +
                           ShapeToString(spec.shape) + ")");
    }
    const SafetensorsTensor& t = *it->second.tensor;
    if (t.shape != spec.shape) {
      return InvalidArgumentError(it->second.file->path().string() +
                                  ": tensor '" + spec.name + "' has shape " +
                                  ShapeToString(t.shape) + ", expected " +
                                  ShapeToString(spec.shape));
    }
    sources[i] = &t;
  }
  // Walk the files in order, so the first extra tensor reported does not
  // depend on hash-map order.
  for (const SafetensorsFile& file : files.files) {
    for (const SafetensorsTensor& t : file.tensors()) {
      if (leaves.Find(t.name).has_value() || IsIgnoredBuffer(t.name)) continue;
      if (t.name == TiedHeadName() && config.tie_word_embeddings) {
        RETURN_IF_ERROR(CheckTiedHead(files.tensors.at(t.name), files));
        continue;
      }
      return InvalidArgumentError(
          file.path().string() + ": unexpected tensor '" + t.name +
          "' (dtype " + std::string(DTypeName(t.dtype)) + ", shape " +
          ShapeToString(t.shape) + "), not part of a " +
          std::string(ModelTypeName(config.model_type)) +
          " model with this config.json");
    }
  }
  return sources;
}

// Elements [first, first + count) of a tensor into BF16 bit patterns: a
// BF16 source is copied as is (no widening on the way), others are
// rounded to nearest even.
void ConvertToBf16(const SafetensorsTensor& src, size_t first, size_t count,
                   uint16_t* out) {
  if (src.dtype == DType::kBF16) {
    std::memcpy(out, src.data.data() + first * 2, count * 2);
    return;
  }
  constexpr size_t kBlock = 1024;
  float wide[kBlock];
  for (size_t i = 0; i < count; i += kBlock) {
    const size_t m = std::min(kBlock, count - i);
    ConvertToF32(src, first + i, m, wide);
    for (size_t k = 0; k < m; ++k) out[i + k] = F32ToBf16(wide[k]);
  }
}

// Fills every leaf from its source, chunk by chunk across the mesh (chunks
// never split an element, whatever mix of dtypes the leaves have).
Status ConvertIntoLeaves(ParamLeaves& leaves,
                         const std::vector<const SafetensorsTensor*>& sources,
                         Mesh* mesh) {
  return ForEachLeafChunk(leaves, mesh, [&](const LeafChunk& c) {
    if (leaves.spec(c.leaf).dtype == DType::kBF16) {
      ConvertToBf16(
          *sources[c.leaf], c.offset / 2, c.size / 2,
          reinterpret_cast<uint16_t*>(leaves.data(c.leaf)) + c.offset / 2);
      return;
    }
    const size_t first = c.offset / sizeof(float);
    ConvertToF32(*sources[c.leaf], first, c.size / sizeof(float),
                 leaves.F32(c.leaf).data() + first);
  });
}

Status LoadWithConfig(const std::filesystem::path& dir,
                      const ModelConfig& config, ParamLeaves& leaves,
                      Mesh* mesh) {
  const std::vector<LeafSpec> expected =
      LeafSpecsFor(config, DecoderMatrixDType(leaves.specs()));
  if (leaves.specs() != expected) {
    return FailedPreconditionError(
        "the leaf list does not have the structure of " +
        (dir / "config.json").string() + ":\n" +
        DiffStructures(expected, leaves.specs()));
  }
  ASSIGN_OR_RETURN(const CheckpointFiles files, OpenCheckpointFiles(dir));
  ASSIGN_OR_RETURN(const auto sources,
                   MatchTensorsToLeaves(files, config, leaves));
  return ConvertIntoLeaves(leaves, sources, mesh);
}

}  // namespace

Status LoadCheckpointInto(const std::filesystem::path& dir, ParamLeaves& leaves,
                          Mesh* mesh) {
  ASSIGN_OR_RETURN(const ModelConfig config, LoadModelConfig(dir));
  return LoadWithConfig(dir, config, leaves, mesh);
}

StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::filesystem::path& dir,
                                          Mesh* mesh, DType matrix_dtype) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  ASSIGN_OR_RETURN(ParamLeaves leaves,
                   ParamLeaves::Allocate(LeafSpecsFor(config, matrix_dtype)));
  RETURN_IF_ERROR(LoadWithConfig(dir, config, leaves, mesh));
  return LoadedCheckpoint{std::move(config), std::move(leaves)};
}

}  // namespace rlrt
