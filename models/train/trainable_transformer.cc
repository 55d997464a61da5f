// Creation and the forward pass; the backward pass is in
// trainable_transformer_backward.cc.
#include "models/train/trainable_transformer.h"

#include <cmath>
#include <cstring>
#include <string>

#include "models/ops/attention.h"
#include "models/ops/log_softmax.h"
#include "models/ops/rope.h"
#include "partition/parallel.h"

namespace rlrt {

TrainableTransformer::TrainableTransformer(
    const ModelConfig& config, const TrainableTransformerOptions& options,
    const ParamLeaves& weights, DecoderLeaves leaves, Mesh* mesh)
    : config_(config),
      options_(options),
      weights_(weights),
      leaves_(std::move(leaves)),
      mesh_(mesh),
      layers_(config_, leaves_, weights, MatmulKernel::kRowInvariant,
              options.kv_dtype.value_or(DecoderMatrixDType(weights.specs())),
              mesh),
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
  if (options.max_lora_rank < 0) {
    return InvalidArgumentError("max_lora_rank must not be negative");
  }
  std::unique_ptr<TrainableTransformer> model(new TrainableTransformer(
      config, options, weights, std::move(leaves), mesh));
  model->lora_capacity_ = std::max(
      options.max_lora_rank,
      options.adapter != nullptr ? options.adapter->rank() : int64_t{0});
  const TrainWorkspaceShape shape{
      .max_tokens = options.max_tokens,
      .logits_chunk_rows = model->LogitsChunkRows(),
      .workers = NumWorkers(mesh),
      .lora_rank = model->lora_capacity_,
      .forward_only = options.forward_only,
      .bf16_grad_scratch = DecoderMatrixDType(weights.specs()) == DType::kBF16};
  ASSIGN_OR_RETURN(model->workspace_, TrainWorkspace::Create(config, shape));
  RETURN_IF_ERROR(model->SetAdapter(options.adapter));
  return model;
}

Status TrainableTransformer::SetAdapter(const LoraAdapter* adapter) {
  std::lock_guard<std::mutex> lock(mu_);
  if (adapter != nullptr) {
    if (adapter->base_shape_fingerprint() !=
        LoraBaseShapeFingerprint(config_)) {
      return InvalidArgumentError(
          "the adapter was made for a base of other layer count or shapes");
    }
    if (adapter->rank() > lora_capacity_) {
      return InvalidArgumentError(
          "adapter rank " + std::to_string(adapter->rank()) +
          " exceeds this model's capacity of " +
          std::to_string(lora_capacity_) + " (max_lora_rank)");
    }
  }
  adapter_ = adapter;
  forward_done_ = false;
  return OkStatus();
}

Status TrainableTransformer::ReleaseWorkspace() {
  forward_done_ = false;
  return workspace_->Release();
}

int64_t TrainableTransformer::num_targets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return forward_done_ ? batch_.num_targets() : 0;
}

Status TrainableTransformer::Forward(std::span<const TrainSequence> batch,
                                     float temperature,
                                     std::span<float> logprobs,
                                     std::span<float> logits,
                                     std::span<float> entropies) {
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
  if (!entropies.empty() && static_cast<int64_t>(entropies.size()) != targets)
    return InvalidArgumentError(
        "entropies holds " + std::to_string(entropies.size()) + " floats for " +
        std::to_string(targets) + " targets");
  if (!logits.empty() &&
      static_cast<int64_t>(logits.size()) != targets * vocab) {
    return InvalidArgumentError("logits holds " +
                                std::to_string(logits.size()) + " floats, " +
                                std::to_string(targets * vocab) + " needed");
  }
  temperature_ = temperature;
  weights_version_ = weights_.version();
  const int64_t rows = batch_.rows();
  TrainWorkspace& w = *workspace_;
  adapter_rows_[0] = {0, rows, adapter_};
  w.layer.adapters.segments =
      adapter_ != nullptr ? std::span<const AdapterSegment>(adapter_rows_)
                          : std::span<const AdapterSegment>();
  adapter_version_ = adapter_ != nullptr ? adapter_->leaves().version() : 0;
  if (rows > 0) {
    RETURN_IF_ERROR(layers_.Embed(batch_.tokens(), rows, w.residual(0)));
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
      RETURN_IF_ERROR(ChunkLogprobs(first, n, logprobs, entropies));
    }
  }
  forward_done_ = true;
  return OkStatus();
}

// The shared decoder layer, every intermediate kept in its own buffer for
// the backward pass; attention reads the batch's keys and values in place.
Status TrainableTransformer::LayerForward(int64_t layer, float* x_out) {
  TrainWorkspace& w = *workspace_;
  auto attend = [&] {
    return layers_.Attend(
        w.layer, batch_.sequences(),
        ContiguousKvView(w.layer.k, w.layer.v, config_.kv_dim()),
        w.attention_scratch, w.attention_stride);
  };
  return layers_.Forward(layer, w.residual(layer), batch_.rows(), w.layer,
                         {w.cos, w.sin}, attend, x_out);
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
  return layers_.Head(head.x, rows, head.normed, head.logits);
}

Status TrainableTransformer::ChunkLogprobs(int64_t first, int64_t rows,
                                           std::span<float> logprobs,
                                           std::span<float> entropies) {
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
      if (!entropies.empty())
        entropies[first + i] = static_cast<float>(SoftmaxEntropy(z, sampled));
    }
    return OkStatus();
  });
}

}  // namespace rlrt
