#include "models/decoder/decoder_layer.h"

#include <array>
#include <cstring>
#include <string>

#include "models/ops/bf16_activations.h"
#include "models/ops/embedding.h"
#include "models/ops/lora_linear.h"
#include "models/ops/rmsnorm.h"
#include "models/ops/rope.h"
#include "models/ops/swiglu.h"

namespace rlrt {
namespace {

// The bias that goes with a projection, if any.
LayerParam BiasOf(LayerParam projection) {
  switch (projection) {
    case LayerParam::kQProj:
      return LayerParam::kQBias;
    case LayerParam::kKProj:
      return LayerParam::kKBias;
    case LayerParam::kVProj:
      return LayerParam::kVBias;
    default:
      return LayerParam::kCount;
  }
}

}  // namespace

DecoderLayers::DecoderLayers(const ModelConfig& config,
                             const DecoderLeaves& leaves,
                             const ParamLeaves& weights, MatmulKernel kernel,
                             DType kv_dtype, Mesh* mesh)
    : config_(config),
      leaves_(leaves),
      weights_(weights),
      kernel_(kernel),
      kv_dtype_(kv_dtype),
      mesh_(mesh),
      eps_(static_cast<float>(config.rms_norm_eps)) {}

Status DecoderLayers::Linear(const float* x, int64_t rows, int64_t in,
                             MatrixRef weight, const float* bias, int64_t out,
                             float* y, bool accumulate) const {
  return LinearForward({.x = x,
                        .rows = rows,
                        .in = in,
                        .weight = weight,
                        .bias = bias,
                        .out = out,
                        .y = y,
                        .accumulate = accumulate,
                        .kernel = kernel_},
                       mesh_);
}

Status DecoderLayers::Project(int64_t layer, LayerParam projection,
                              const float* x, int64_t rows, float* y,
                              bool accumulate,
                              const AdapterRows& adapters) const {
  const std::array<int64_t, 2> shape = ProjectionShape(config_, projection);
  if (shape[0] == 0) {
    return InvalidArgumentError("layer parameter " +
                                std::string(LayerParamSuffix(projection)) +
                                " is not a projection");
  }
  const LayerParam bias = BiasOf(projection);
  RETURN_IF_ERROR(
      Linear(x, rows, shape[1], leaves_.Matrix(weights_, layer, projection),
             bias == LayerParam::kCount ? nullptr : Weight(layer, bias),
             shape[0], y, accumulate));
  const auto [out, in] = shape;
  for (const AdapterSegment& segment : adapters.segments) {
    if (segment.adapter == nullptr) continue;
    const LoraFactors factors = segment.adapter->Factors(layer, projection);
    if (factors.rank == 0) continue;
    if (segment.begin < 0 || segment.end > rows ||
        segment.begin > segment.end) {
      return InvalidArgumentError(
          "adapter segment [" + std::to_string(segment.begin) + ", " +
          std::to_string(segment.end) + ") is outside the call's " +
          std::to_string(rows) + " rows");
    }
    // Segments run one after another, so each reuses the scratch.
    RETURN_IF_ERROR(LoraForward({.factors = factors,
                                 .x = x + segment.begin * in,
                                 .rows = segment.end - segment.begin,
                                 .in = in,
                                 .out = out,
                                 .u = adapters.scratch,
                                 .y = y + segment.begin * out},
                                mesh_));
  }
  return OkStatus();
}

Status DecoderLayers::Embed(const int32_t* tokens, int64_t rows,
                            float* x) const {
  return EmbeddingForward(leaves_.Matrix(weights_, ModelParam::kEmbedding),
                          config_.hidden_size, tokens, rows, x, mesh_);
}

Status DecoderLayers::Attend(const LayerActivations& a,
                             std::span<const AttentionSequence> sequences,
                             PagedKvView kv, float* scratch,
                             int64_t scratch_stride) const {
  return PagedAttentionForward({.q = a.q,
                                .out = a.attn,
                                .num_heads = config_.num_attention_heads,
                                .num_kv_heads = config_.num_key_value_heads,
                                .head_dim = config_.head_dim,
                                .sequences = sequences,
                                .kv = kv,
                                .scratch = scratch,
                                .scratch_stride = scratch_stride},
                               mesh_);
}

Status DecoderLayers::Forward(int64_t layer, const float* x, int64_t rows,
                              const LayerActivations& a, RotaryRows rotary,
                              FunctionRef<Status()> attend,
                              float* x_out) const {
  const int64_t h = config_.hidden_size;
  const int64_t d = config_.head_dim;
  const int64_t heads = config_.num_attention_heads;
  const int64_t kv_heads = config_.num_key_value_heads;
  const int64_t inter = config_.intermediate_size;

  // Attention block.
  RETURN_IF_ERROR(RmsNormForward(x, Weight(layer, LayerParam::kInputNorm),
                                 a.normed_attn, rows, h, eps_, mesh_));
  float* q = config_.qk_norm ? a.q_raw : a.q;
  float* k = config_.qk_norm ? a.k_raw : a.k;
  RETURN_IF_ERROR(Project(layer, LayerParam::kQProj, a.normed_attn, rows, q,
                          false, a.adapters));
  RETURN_IF_ERROR(Project(layer, LayerParam::kKProj, a.normed_attn, rows, k,
                          false, a.adapters));
  RETURN_IF_ERROR(Project(layer, LayerParam::kVProj, a.normed_attn, rows, a.v,
                          false, a.adapters));
  if (config_.qk_norm) {
    RETURN_IF_ERROR(RmsNormForward(a.q_raw, Weight(layer, LayerParam::kQNorm),
                                   a.q, rows * heads, d, eps_, mesh_));
    RETURN_IF_ERROR(RmsNormForward(a.k_raw, Weight(layer, LayerParam::kKNorm),
                                   a.k, rows * kv_heads, d, eps_, mesh_));
  }
  RETURN_IF_ERROR(
      RopeForward(a.q, rows, heads, d, rotary.cos, rotary.sin, mesh_));
  RETURN_IF_ERROR(
      RopeForward(a.k, rows, kv_heads, d, rotary.cos, rotary.sin, mesh_));
  if (kv_dtype_ == DType::kBF16) {
    RETURN_IF_ERROR(RoundToBf16InPlace(a.k, rows * kv_heads * d, mesh_));
    RETURN_IF_ERROR(RoundToBf16InPlace(a.v, rows * kv_heads * d, mesh_));
  }
  RETURN_IF_ERROR(attend());
  if (a.mid != x) std::memcpy(a.mid, x, rows * h * sizeof(float));
  RETURN_IF_ERROR(Project(layer, LayerParam::kOProj, a.attn, rows, a.mid,
                          /*accumulate=*/true, a.adapters));

  // MLP block.
  RETURN_IF_ERROR(RmsNormForward(a.mid, Weight(layer, LayerParam::kPostNorm),
                                 a.normed_mlp, rows, h, eps_, mesh_));
  RETURN_IF_ERROR(Project(layer, LayerParam::kGateProj, a.normed_mlp, rows,
                          a.gate, false, a.adapters));
  RETURN_IF_ERROR(Project(layer, LayerParam::kUpProj, a.normed_mlp, rows, a.up,
                          false, a.adapters));
  RETURN_IF_ERROR(SwigluForward(a.gate, a.up, a.act, rows * inter, mesh_));
  if (x_out == nullptr) return OkStatus();
  if (x_out != a.mid) std::memcpy(x_out, a.mid, rows * h * sizeof(float));
  return Project(layer, LayerParam::kDownProj, a.act, rows, x_out,
                 /*accumulate=*/true, a.adapters);
}

Status DecoderLayers::Head(const float* x, int64_t rows, float* normed,
                           float* logits) const {
  const int64_t h = config_.hidden_size;
  RETURN_IF_ERROR(RmsNormForward(x,
                                 leaves_.Get(weights_, ModelParam::kFinalNorm),
                                 normed, rows, h, eps_, mesh_));
  return Linear(normed, rows, h, leaves_.Matrix(weights_, ModelParam::kLmHead),
                nullptr, config_.vocab_size, logits, /*accumulate=*/false);
}

}  // namespace rlrt
