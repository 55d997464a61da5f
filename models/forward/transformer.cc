#include "models/forward/transformer.h"

#include <cstring>
#include <string>

#include "models/ops/embedding.h"
#include "models/ops/linear.h"
#include "models/ops/rmsnorm.h"
#include "models/ops/rope.h"
#include "models/ops/swiglu.h"
#include "models/parallel.h"

namespace rlrt {
namespace {

std::string LayerPrefix(int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".";
}

}  // namespace

Transformer::Transformer(const ModelConfig& config,
                         const TransformerOptions& options, Mesh* mesh)
    : config_(config), options_(options), mesh_(mesh) {}

StatusOr<std::unique_ptr<Transformer>> Transformer::Create(
    const ModelConfig& config, const ParamLeaves& weights, Mesh* mesh,
    const TransformerOptions& options) {
  RETURN_IF_ERROR(ValidateModelConfig(config));
  TransformerOptions resolved = options;
  if (resolved.max_context == 0) {
    resolved.max_context =
        std::min<int64_t>(4096, config.max_position_embeddings);
  }
  return CreateResolved(config, weights, mesh, resolved);
}

StatusOr<std::unique_ptr<Transformer>> Transformer::CreateResolved(
    const ModelConfig& config, const ParamLeaves& weights, Mesh* mesh,
    const TransformerOptions& options) {
  if (options.max_batch_tokens <= 0 || options.max_context <= 0) {
    return InvalidArgumentError(
        "max_batch_tokens and max_context must be positive");
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
  std::unique_ptr<Transformer> model(new Transformer(config, options, mesh));
  RETURN_IF_ERROR(model->ResolveWeights(weights));
  RETURN_IF_ERROR(model->AllocateWorkspace());
  return model;
}

Status Transformer::ResolveWeights(const ParamLeaves& weights) {
  const std::vector<LeafSpec> expected = LeafSpecsFor(config_);
  if (weights.fingerprint() != StructureFingerprint(expected)) {
    return InvalidArgumentError(
        "weights do not have the structure of this config:\n" +
        DiffStructures(expected, weights.specs()));
  }
  auto leaf = [&](const std::string& name) -> const float* {
    std::optional<size_t> i = weights.Find(name);
    return i ? weights.F32(*i).data() : nullptr;
  };
  embed_ = leaf("model.embed_tokens.weight");
  final_norm_ = leaf("model.norm.weight");
  lm_head_ = config_.tie_word_embeddings ? embed_ : leaf("lm_head.weight");
  layers_.resize(config_.num_hidden_layers);
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    const std::string p = LayerPrefix(l);
    LayerWeights& w = layers_[l];
    w.input_norm = leaf(p + "input_layernorm.weight");
    w.q_proj = leaf(p + "self_attn.q_proj.weight");
    w.q_bias = leaf(p + "self_attn.q_proj.bias");
    w.k_proj = leaf(p + "self_attn.k_proj.weight");
    w.k_bias = leaf(p + "self_attn.k_proj.bias");
    w.v_proj = leaf(p + "self_attn.v_proj.weight");
    w.v_bias = leaf(p + "self_attn.v_proj.bias");
    w.o_proj = leaf(p + "self_attn.o_proj.weight");
    w.q_norm = leaf(p + "self_attn.q_norm.weight");
    w.k_norm = leaf(p + "self_attn.k_norm.weight");
    w.post_norm = leaf(p + "post_attention_layernorm.weight");
    w.gate_proj = leaf(p + "mlp.gate_proj.weight");
    w.up_proj = leaf(p + "mlp.up_proj.weight");
    w.down_proj = leaf(p + "mlp.down_proj.weight");
  }
  return OkStatus();
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
                           workers * options_.max_context};
  float** targets[] = {&x_,    &normed_, &q_,   &k_,   &v_,     &attn_,
                       &gate_, &up_,     &cos_, &sin_, &scores_};
  int64_t total = 0;
  for (int64_t s : sizes) total += (s + 15) / 16 * 16;
  ASSIGN_OR_RETURN(arena_, PageArena::Create(total * sizeof(float)));
  float* next = reinterpret_cast<float*>(arena_.data());
  for (size_t i = 0; i < std::size(sizes); ++i) {
    *targets[i] = next;
    next += (sizes[i] + 15) / 16 * 16;
  }
  rope_inv_freq_ = RopeInverseFrequencies(config_.head_dim, config_.rope_theta);
  tokens_.resize(t);
  positions_.resize(t);
  row_pages_.resize(t);
  logit_rows_.reserve(t);
  sequences_.reserve(t);
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
  int64_t total = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const SequenceInput& s = batch[i];
    const std::string where = "sequence " + std::to_string(i);
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
  for (const SequenceInput& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    if (n == 0) continue;
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

  const int64_t h = config_.hidden_size;
  RETURN_IF_ERROR(EmbeddingForward(embed_, h, tokens_.data(), rows, x_, mesh_));
  RopeTables(positions_.data(), rows, rope_inv_freq_, cos_, sin_);
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    RETURN_IF_ERROR(RunLayer(l, rows, cache));
  }

  // Only the rows whose logits are wanted go through the final norm and the
  // LM head, the most expensive matmul for small models.
  const int64_t out_rows = static_cast<int64_t>(logit_rows_.size());
  for (int64_t r = 0; r < out_rows; ++r) {
    std::memcpy(normed_ + r * h, x_ + logit_rows_[r] * h, h * sizeof(float));
  }
  RETURN_IF_ERROR(RmsNormForward(normed_, final_norm_, normed_, out_rows, h,
                                 static_cast<float>(config_.rms_norm_eps),
                                 mesh_));
  return Linear(normed_, out_rows, h, lm_head_, nullptr, config_.vocab_size,
                logits.data());
}

Status Transformer::Linear(const float* x, int64_t rows, int64_t in,
                           const float* weight, const float* bias, int64_t out,
                           float* y, bool accumulate) {
  LinearArgs a;
  a.x = x;
  a.rows = rows;
  a.in = in;
  a.weight = weight;
  a.bias = bias;
  a.out = out;
  a.y = y;
  a.accumulate = accumulate;
  a.kernel = options_.matmul;
  return LinearForward(a, mesh_);
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
        std::memcpy(cache.KeySlot(layer, page, kh, pos % ps),
                    k_ + (r * kv_heads + kh) * d, d * sizeof(float));
        std::memcpy(cache.ValueSlot(layer, page, kh, pos % ps),
                    v_ + (r * kv_heads + kh) * d, d * sizeof(float));
      }
    }
    return OkStatus();
  });
}

Status Transformer::RunLayer(int64_t layer, int64_t rows, KvCache& cache) {
  const LayerWeights& w = layers_[layer];
  const int64_t h = config_.hidden_size;
  const int64_t d = config_.head_dim;
  const int64_t heads = config_.num_attention_heads;
  const int64_t kv_heads = config_.num_key_value_heads;
  const float eps = static_cast<float>(config_.rms_norm_eps);

  RETURN_IF_ERROR(
      RmsNormForward(x_, w.input_norm, normed_, rows, h, eps, mesh_));
  RETURN_IF_ERROR(
      Linear(normed_, rows, h, w.q_proj, w.q_bias, config_.q_dim(), q_));
  RETURN_IF_ERROR(
      Linear(normed_, rows, h, w.k_proj, w.k_bias, config_.kv_dim(), k_));
  RETURN_IF_ERROR(
      Linear(normed_, rows, h, w.v_proj, w.v_bias, config_.kv_dim(), v_));
  if (config_.qk_norm) {
    RETURN_IF_ERROR(
        RmsNormForward(q_, w.q_norm, q_, rows * heads, d, eps, mesh_));
    RETURN_IF_ERROR(
        RmsNormForward(k_, w.k_norm, k_, rows * kv_heads, d, eps, mesh_));
  }
  RETURN_IF_ERROR(RopeForward(q_, rows, heads, d, cos_, sin_, mesh_));
  RETURN_IF_ERROR(RopeForward(k_, rows, kv_heads, d, cos_, sin_, mesh_));
  RETURN_IF_ERROR(WriteKv(layer, rows, cache));

  AttentionArgs attention;
  attention.q = q_;
  attention.out = attn_;
  attention.num_heads = heads;
  attention.num_kv_heads = kv_heads;
  attention.head_dim = d;
  attention.sequences = sequences_;
  attention.kv = cache.LayerView(layer);
  attention.scratch = scores_;
  attention.scratch_stride = options_.max_context;
  RETURN_IF_ERROR(PagedAttentionForward(attention, mesh_));

  // Residual: x += o_proj(attention).
  RETURN_IF_ERROR(Linear(attn_, rows, config_.q_dim(), w.o_proj, nullptr, h, x_,
                         /*accumulate=*/true));

  RETURN_IF_ERROR(
      RmsNormForward(x_, w.post_norm, normed_, rows, h, eps, mesh_));
  const int64_t inter = config_.intermediate_size;
  RETURN_IF_ERROR(Linear(normed_, rows, h, w.gate_proj, nullptr, inter, gate_));
  RETURN_IF_ERROR(Linear(normed_, rows, h, w.up_proj, nullptr, inter, up_));
  RETURN_IF_ERROR(SwigluForward(gate_, up_, gate_, rows * inter, mesh_));
  // Residual: x += mlp(...).
  return Linear(gate_, rows, inter, w.down_proj, nullptr, h, x_,
                /*accumulate=*/true);
}

}  // namespace rlrt
