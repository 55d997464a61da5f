// Creation and the forward pass; the backward pass is in
// trainable_transformer_backward.cc.
#include "models/train/trainable_transformer.h"

#include <cmath>
#include <cstring>
#include <string>

#include "models/ops/attention.h"
#include "models/ops/embedding.h"
#include "models/ops/linear.h"
#include "models/ops/log_softmax.h"
#include "models/ops/rmsnorm.h"
#include "models/ops/rope.h"
#include "models/ops/swiglu.h"
#include "models/parallel.h"

namespace rlrt {

TrainableTransformer::TrainableTransformer(
    const ModelConfig& config, const TrainableTransformerOptions& options,
    const ParamLeaves& weights, DecoderLeaves leaves, Mesh* mesh)
    : config_(config),
      options_(options),
      weights_(weights),
      leaves_(std::move(leaves)),
      mesh_(mesh),
      eps_(static_cast<float>(config.rms_norm_eps)),
      rope_inv_freq_(
          RopeInverseFrequencies(config.head_dim, config.rope_theta)),
      batch_(options.max_tokens) {}

StatusOr<std::unique_ptr<TrainableTransformer>> TrainableTransformer::Create(
    const ModelConfig& config, const ParamLeaves& weights, Mesh* mesh,
    const TrainableTransformerOptions& options) {
  ASSIGN_OR_RETURN(DecoderLeaves leaves,
                   DecoderLeaves::Resolve(config, weights));
  if (options.max_tokens <= 0 || options.logits_chunk_rows <= 0) {
    return InvalidArgumentError(
        "max_tokens and logits_chunk_rows must be positive");
  }
  if (options.sample_vocab < 0 || options.sample_vocab > config.vocab_size) {
    return InvalidArgumentError("sample_vocab " +
                                std::to_string(options.sample_vocab) +
                                " is outside [0, vocab_size " +
                                std::to_string(config.vocab_size) + "]");
  }
  if (config.head_dim > kMaxAttentionHeadDim) {
    return InvalidArgumentError("head_dim " + std::to_string(config.head_dim) +
                                " exceeds the backward's limit of " +
                                std::to_string(kMaxAttentionHeadDim));
  }
  std::unique_ptr<TrainableTransformer> model(new TrainableTransformer(
      config, options, weights, std::move(leaves), mesh));
  const TrainWorkspaceShape shape{options.max_tokens, model->LogitsChunkRows(),
                                  NumWorkers(mesh)};
  ASSIGN_OR_RETURN(model->workspace_, TrainWorkspace::Create(config, shape));
  return model;
}

int64_t TrainableTransformer::num_targets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return forward_done_ ? batch_.num_targets() : 0;
}

Status TrainableTransformer::Forward(std::span<const TrainSequence> batch,
                                     float temperature,
                                     std::span<float> logprobs,
                                     std::span<float> logits) {
  std::lock_guard<std::mutex> lock(mu_);
  forward_done_ = false;
  if (!std::isfinite(temperature) || temperature <= 0.0f) {
    return InvalidArgumentError(
        "temperature must be positive and finite, got " +
        std::to_string(temperature));
  }
  const BatchLimits limits{sample_vocab(), options_.max_tokens,
                           config_.max_position_embeddings};
  RETURN_IF_ERROR(batch_.Assign(batch, limits));
  const int64_t targets = batch_.num_targets();
  const int64_t vocab = config_.vocab_size;
  if (static_cast<int64_t>(logprobs.size()) != targets) {
    return InvalidArgumentError(
        "logprobs holds " + std::to_string(logprobs.size()) + " floats for " +
        std::to_string(targets) + " targets");
  }
  if (!logits.empty() &&
      static_cast<int64_t>(logits.size()) != targets * vocab) {
    return InvalidArgumentError("logits holds " +
                                std::to_string(logits.size()) + " floats, " +
                                std::to_string(targets * vocab) + " needed");
  }
  temperature_ = temperature;
  weights_version_ = weights_.version();
  const int64_t rows = batch_.rows();
  if (rows > 0) {
    TrainWorkspace& w = *workspace_;
    RETURN_IF_ERROR(EmbeddingForward(
        leaves_.Get(weights_, ModelParam::kEmbedding), config_.hidden_size,
        batch_.tokens(), rows, w.residual(0), mesh_));
    RopeTables(batch_.positions(), rows, rope_inv_freq_, w.cos, w.sin);
    for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
      RETURN_IF_ERROR(LayerForward(l, w.residual(l + 1)));
    }
    const int64_t chunk = LogitsChunkRows();
    for (int64_t first = 0; first < targets; first += chunk) {
      const int64_t n = std::min(chunk, targets - first);
      RETURN_IF_ERROR(HeadForward(first, n));
      if (!logits.empty()) {
        std::memcpy(logits.data() + first * vocab, w.head.logits,
                    n * vocab * sizeof(float));
      }
      RETURN_IF_ERROR(ChunkLogprobs(first, n, logprobs));
    }
  }
  forward_done_ = true;
  return OkStatus();
}

Status TrainableTransformer::Linear(const float* x, const float* weight,
                                    const float* bias, int64_t rows, int64_t in,
                                    int64_t out, float* y, bool accumulate) {
  // Always the row-invariant kernel: it is what makes these logits equal
  // the sampler's.
  return LinearForward({.x = x,
                        .rows = rows,
                        .in = in,
                        .weight = weight,
                        .bias = bias,
                        .out = out,
                        .y = y,
                        .accumulate = accumulate,
                        .kernel = MatmulKernel::kRowInvariant},
                       mesh_);
}

Status TrainableTransformer::AttentionForward() {
  TrainWorkspace& w = *workspace_;
  return PagedAttentionForward(
      {.q = w.layer.q,
       .out = w.layer.attn,
       .num_heads = config_.num_attention_heads,
       .num_kv_heads = config_.num_key_value_heads,
       .head_dim = config_.head_dim,
       .sequences = batch_.sequences(),
       .kv = ContiguousKvView(w.layer.k, w.layer.v, config_.kv_dim()),
       .scratch = w.attention_scratch,
       .scratch_stride = w.attention_stride},
      mesh_);
}

// The same ops in the same order as Transformer::RunLayer, with every
// intermediate kept in its own buffer for the backward pass.
Status TrainableTransformer::LayerForward(int64_t layer, float* x_out) {
  TrainWorkspace::Layer& a = workspace_->layer;
  const float* x = workspace_->residual(layer);
  const int64_t rows = batch_.rows();
  const int64_t h = config_.hidden_size, d = config_.head_dim;
  const int64_t heads = config_.num_attention_heads;
  const int64_t kv_heads = config_.num_key_value_heads;
  const int64_t inter = config_.intermediate_size;
  auto w = [&](LayerParam p) { return leaves_.Get(weights_, layer, p); };

  RETURN_IF_ERROR(RmsNormForward(x, w(LayerParam::kInputNorm), a.normed_attn,
                                 rows, h, eps_, mesh_));
  float* q = config_.qk_norm ? a.q_raw : a.q;
  float* k = config_.qk_norm ? a.k_raw : a.k;
  RETURN_IF_ERROR(Linear(a.normed_attn, w(LayerParam::kQProj),
                         w(LayerParam::kQBias), rows, h, config_.q_dim(), q));
  RETURN_IF_ERROR(Linear(a.normed_attn, w(LayerParam::kKProj),
                         w(LayerParam::kKBias), rows, h, config_.kv_dim(), k));
  RETURN_IF_ERROR(Linear(a.normed_attn, w(LayerParam::kVProj),
                         w(LayerParam::kVBias), rows, h, config_.kv_dim(),
                         a.v));
  if (config_.qk_norm) {
    RETURN_IF_ERROR(RmsNormForward(a.q_raw, w(LayerParam::kQNorm), a.q,
                                   rows * heads, d, eps_, mesh_));
    RETURN_IF_ERROR(RmsNormForward(a.k_raw, w(LayerParam::kKNorm), a.k,
                                   rows * kv_heads, d, eps_, mesh_));
  }
  const float* cos = workspace_->cos;
  const float* sin = workspace_->sin;
  RETURN_IF_ERROR(RopeForward(a.q, rows, heads, d, cos, sin, mesh_));
  RETURN_IF_ERROR(RopeForward(a.k, rows, kv_heads, d, cos, sin, mesh_));
  RETURN_IF_ERROR(AttentionForward());

  std::memcpy(a.mid, x, rows * h * sizeof(float));
  RETURN_IF_ERROR(Linear(a.attn, w(LayerParam::kOProj), nullptr, rows,
                         config_.q_dim(), h, a.mid, /*accumulate=*/true));
  RETURN_IF_ERROR(RmsNormForward(a.mid, w(LayerParam::kPostNorm), a.normed_mlp,
                                 rows, h, eps_, mesh_));
  RETURN_IF_ERROR(Linear(a.normed_mlp, w(LayerParam::kGateProj), nullptr, rows,
                         h, inter, a.gate));
  RETURN_IF_ERROR(Linear(a.normed_mlp, w(LayerParam::kUpProj), nullptr, rows, h,
                         inter, a.up));
  RETURN_IF_ERROR(SwigluForward(a.gate, a.up, a.act, rows * inter, mesh_));
  if (x_out == nullptr) return OkStatus();
  std::memcpy(x_out, a.mid, rows * h * sizeof(float));
  return Linear(a.act, w(LayerParam::kDownProj), nullptr, rows, inter, h, x_out,
                /*accumulate=*/true);
}

Status TrainableTransformer::HeadForward(int64_t first, int64_t rows) {
  TrainWorkspace::Head& head = workspace_->head;
  const int64_t h = config_.hidden_size;
  const float* x = workspace_->residual(config_.num_hidden_layers);
  const std::span<const int64_t> target_rows = batch_.target_rows();
  for (int64_t i = 0; i < rows; ++i) {
    std::memcpy(head.x + i * h, x + target_rows[first + i] * h,
                h * sizeof(float));
  }
  RETURN_IF_ERROR(RmsNormForward(head.x,
                                 leaves_.Get(weights_, ModelParam::kFinalNorm),
                                 head.normed, rows, h, eps_, mesh_));
  return Linear(head.normed, leaves_.Get(weights_, ModelParam::kLmHead),
                nullptr, rows, h, config_.vocab_size, head.logits);
}

Status TrainableTransformer::ChunkLogprobs(int64_t first, int64_t rows,
                                           std::span<float> logprobs) {
  const int64_t vocab = config_.vocab_size;
  const int64_t sampled = sample_vocab();
  float* logits = workspace_->head.logits;
  const std::span<const int32_t> tokens = batch_.target_tokens();
  return ParallelForOrInline(mesh_, rows, [&](const Shard& s) {
    for (int64_t i = s.begin; i < s.end; ++i) {
      // Tempered the sampler's way (see TemperLogits), so the logprob is
      // the one the sampler reported for this token, bit for bit.
      float* z = logits + i * vocab;
      TemperLogits(z, sampled, temperature_, z);
      logprobs[first + i] = TokenLogprob(z, sampled, tokens[first + i]);
    }
    return OkStatus();
  });
}

}  // namespace rlrt
