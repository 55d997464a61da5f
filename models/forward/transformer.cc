#include "models/forward/transformer.h"

#include <cstring>
#include <string>

#include "models/ops/rope.h"
#include "partition/parallel.h"

namespace rlrt {

Transformer::Transformer(const ModelConfig& config,
                         const TransformerOptions& options,
                         const ParamLeaves& weights, DecoderLeaves leaves,
                         Mesh* mesh)
    : config_(config),
      options_(options),
      mesh_(mesh),
      leaves_(std::move(leaves)),
      layers_(config_, leaves_, weights, options.matmul, *options.kv_dtype,
              mesh) {}
StatusOr<std::unique_ptr<Transformer>> Transformer::Create(
    const ModelConfig& config, const ParamLeaves& weights, Mesh* mesh,
    const TransformerOptions& options) {
  RETURN_IF_ERROR(ValidateModelConfig(config));
  TransformerOptions resolved = options;
  if (resolved.max_context == 0) {
    resolved.max_context = DefaultContextLength(config);
  }
  if (!resolved.kv_dtype)
    resolved.kv_dtype = DecoderMatrixDType(weights.specs());
  return CreateResolved(config, weights, mesh, resolved);
}

StatusOr<std::unique_ptr<Transformer>> Transformer::CreateResolved(
    const ModelConfig& config, const ParamLeaves& weights, Mesh* mesh,
    const TransformerOptions& options) {
  if (options.max_batch_tokens <= 0 || options.max_context <= 0) {
    return InvalidArgumentError(
        "max_batch_tokens and max_context must be positive");
  }
  if (options.max_lora_rank < 0) {
    return InvalidArgumentError("max_lora_rank must not be negative");
  }
  if (options.max_context > config.max_position_embeddings) {
    return InvalidArgumentError(
        "max_context " + std::to_string(options.max_context) +
        " exceeds the model's max_position_embeddings " +
        std::to_string(config.max_position_embeddings));
  }
  if (config.head_dim % 2 != 0) {
    return InvalidArgumentError("rotary embedding needs an even head_dim");
  }
  if (!options.kv_dtype ||
      (*options.kv_dtype != DType::kF32 && *options.kv_dtype != DType::kBF16)) {
    return InvalidArgumentError("the KV cache dtype must be F32 or BF16");
  }
  ASSIGN_OR_RETURN(DecoderLeaves leaves,
                   DecoderLeaves::Resolve(config, weights));
  std::unique_ptr<Transformer> model(
      new Transformer(config, options, weights, std::move(leaves), mesh));
  RETURN_IF_ERROR(model->AllocateWorkspace());
  return model;
}

Status Transformer::AllocateWorkspace() {
  const int64_t t = options_.max_batch_tokens;
  const int64_t h = config_.hidden_size;
  const int64_t half = config_.head_dim / 2;
  const int64_t workers = NumWorkers(mesh_);
  // Each buffer rounded up to 16 floats (64 bytes) so all stay aligned.
  const int64_t sizes[] = {t * h,
                           t * h,
                           t * config_.q_dim(),
                           t * config_.kv_dim(),
                           t * config_.kv_dim(),
                           t * config_.q_dim(),
                           t * config_.intermediate_size,
                           t * config_.intermediate_size,
                           t * half,
                           t * half,
                           workers * options_.max_context,
                           t * options_.max_lora_rank};
  float* normed = nullptr;
  float** targets[] = {&x_,     &normed,    &act_.q,    &act_.k,
                       &act_.v, &act_.attn, &act_.gate, &act_.up,
                       &cos_,   &sin_,      &scores_,   &lora_scratch_};
  int64_t total = 0;
  for (int64_t s : sizes) total += (s + 15) / 16 * 16;
  ASSIGN_OR_RETURN(arena_, PageArena::Create(total * sizeof(float)));
  float* next = reinterpret_cast<float*>(arena_.data());
  for (size_t i = 0; i < std::size(sizes); ++i) {
    *targets[i] = next;
    next += (sizes[i] + 15) / 16 * 16;
  }
  act_.normed_attn = act_.normed_mlp = normed;
  act_.q_raw = act_.q;
  act_.k_raw = act_.k;
  act_.mid = x_;
  act_.act = act_.gate;
  rope_inv_freq_ = RopeInverseFrequencies(config_.head_dim, config_.rope_theta);
  tokens_.resize(t);
  positions_.resize(t);
  row_pages_.resize(t);
  logit_rows_.reserve(t);
  sequences_.reserve(t);
  adapter_segments_.reserve(t);
  act_.adapters.scratch = lora_scratch_;
  return OkStatus();
}

int64_t Transformer::LogitRows(std::span<const SequenceInput> batch) {
  int64_t rows = 0;
  for (const SequenceInput& s : batch) {
    if (!s.tokens.empty()) rows += s.all_logits ? s.tokens.size() : 1;
  }
  return rows;
}

Status Transformer::Validate(std::span<const SequenceInput> batch,
                             const KvCache& cache,
                             std::span<float> logits) const {
  const KvCacheShape& shape = cache.shape();
  if (shape.num_layers != config_.num_hidden_layers ||
      shape.num_kv_heads != config_.num_key_value_heads ||
      shape.head_dim != config_.head_dim) {
    return InvalidArgumentError("KV cache shape does not match the model");
  }
  if (shape.dtype != *options_.kv_dtype) {
    return InvalidArgumentError(
        "KV cache dtype " + std::string(DTypeName(shape.dtype)) +
        " is not the model's " + std::string(DTypeName(*options_.kv_dtype)));
  }
  int64_t total = 0;
  // Computed at the first adapter only: a batch without adapters (every
  // decode step of a base-only engine) pays nothing for LoRA.
  uint64_t lora_base = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const SequenceInput& s = batch[i];
    const std::string where = "sequence " + std::to_string(i);
    if (s.adapter != nullptr) {
      if (lora_base == 0) lora_base = LoraBaseShapeFingerprint(config_);
      if (s.adapter->base_shape_fingerprint() != lora_base) {
        return InvalidArgumentError(
            where + ": its adapter was made for another base model");
      }
      if (s.adapter->rank() > options_.max_lora_rank) {
        return InvalidArgumentError(
            where + ": adapter rank " + std::to_string(s.adapter->rank()) +
            " exceeds max_lora_rank " + std::to_string(options_.max_lora_rank));
      }
    }
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    total += n;
    if (s.start_position < 0)
      return InvalidArgumentError(where + ": negative start");
    const int64_t end = s.start_position + n;
    if (end > options_.max_context) {
      return InvalidArgumentError(where + ": " + std::to_string(end) +
                                  " tokens exceed the context of " +
                                  std::to_string(options_.max_context));
    }
    const int64_t pages_needed = (end + shape.page_size - 1) / shape.page_size;
    if (static_cast<int64_t>(s.pages.size()) < pages_needed) {
      return InvalidArgumentError(where + ": page table has " +
                                  std::to_string(s.pages.size()) + " pages, " +
                                  std::to_string(pages_needed) + " needed");
    }
    for (int64_t p = 0; p < pages_needed; ++p) {
      if (s.pages[p] < 0 || s.pages[p] >= shape.num_pages) {
        return InvalidArgumentError(where + ": page id " +
                                    std::to_string(s.pages[p]) +
                                    " out of range");
      }
    }
    for (int32_t token : s.tokens) {
      if (token < 0 || token >= config_.vocab_size) {
        return InvalidArgumentError(
            where + ": token id " + std::to_string(token) +
            " outside the vocabulary of " + std::to_string(config_.vocab_size));
      }
    }
  }
  if (total > options_.max_batch_tokens) {
    return InvalidArgumentError("batch of " + std::to_string(total) +
                                " tokens exceeds max_batch_tokens " +
                                std::to_string(options_.max_batch_tokens));
  }
  const int64_t needed = LogitRows(batch) * config_.vocab_size;
  if (static_cast<int64_t>(logits.size()) < needed) {
    return InvalidArgumentError("logits buffer holds " +
                                std::to_string(logits.size()) + " floats, " +
                                std::to_string(needed) + " needed");
  }
  return OkStatus();
}

Status Transformer::Forward(std::span<const SequenceInput> batch,
                            KvCache& cache, std::span<float> logits) {
  std::lock_guard<std::mutex> lock(forward_mu_);
  RETURN_IF_ERROR(Validate(batch, cache, logits));

  // Flatten the batch into rows.
  int64_t rows = 0;
  sequences_.clear();
  logit_rows_.clear();
  adapter_segments_.clear();
  for (const SequenceInput& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    if (n == 0) continue;
    if (s.adapter != nullptr) {
      // Neighbours with one adapter share a segment: fewer, larger matmuls,
      // the same bits (rows do not affect each other).
      if (!adapter_segments_.empty() &&
          adapter_segments_.back().adapter == s.adapter &&
          adapter_segments_.back().end == rows) {
        adapter_segments_.back().end = rows + n;
      } else {
        adapter_segments_.push_back({rows, rows + n, s.adapter});
      }
    }
    sequences_.push_back(
        AttentionSequence{rows, n, s.start_position, s.pages.data()});
    for (int64_t i = 0; i < n; ++i) {
      tokens_[rows + i] = s.tokens[i];
      positions_[rows + i] = static_cast<int32_t>(s.start_position + i);
      row_pages_[rows + i] = s.pages.data();
      if (s.all_logits || i == n - 1) logit_rows_.push_back(rows + i);
    }
    rows += n;
  }
  if (rows == 0) return OkStatus();
  act_.adapters.segments = adapter_segments_;

  const int64_t h = config_.hidden_size;
  RETURN_IF_ERROR(layers_.Embed(tokens_.data(), rows, x_));
  RopeTables(positions_.data(), rows, rope_inv_freq_, cos_, sin_);
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    auto attend = [&]() -> Status {
      RETURN_IF_ERROR(WriteKv(l, rows, cache));
      return layers_.Attend(act_, sequences_, cache.LayerView(l), scores_,
                            options_.max_context);
    };
    RETURN_IF_ERROR(
        layers_.Forward(l, x_, rows, act_, {cos_, sin_}, attend, x_));
  }

  // Only the rows whose logits are wanted go through the final norm and the
  // LM head, the most expensive matmul for small models.
  const int64_t out_rows = static_cast<int64_t>(logit_rows_.size());
  float* normed = act_.normed_attn;
  for (int64_t r = 0; r < out_rows; ++r) {
    std::memcpy(normed + r * h, x_ + logit_rows_[r] * h, h * sizeof(float));
  }
  return layers_.Head(normed, out_rows, normed, logits.data());
}

Status Transformer::WriteKv(int64_t layer, int64_t rows, KvCache& cache) {
  const int64_t kv_heads = config_.num_key_value_heads;
  const int64_t d = config_.head_dim;
  const int64_t ps = cache.shape().page_size;
  return ParallelForOrInline(mesh_, rows, [&](const Shard& s) {
    for (int64_t r = s.begin; r < s.end; ++r) {
      const int64_t pos = positions_[r];
      const int32_t page = row_pages_[r][pos / ps];
      for (int64_t kh = 0; kh < kv_heads; ++kh) {
        cache.WriteKey(layer, page, kh, pos % ps,
                       act_.k + (r * kv_heads + kh) * d);
        cache.WriteValue(layer, page, kh, pos % ps,
                         act_.v + (r * kv_heads + kh) * d);
      }
    }
    return OkStatus();
  });
}

}  // namespace rlrt
