// The backward pass of TrainableTransformer: the LM head chunk by chunk,
// then the layers from the last to the first, each recomputed from the
// residual stream that entered it, then the embedding.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "models/ops/attention.h"
#include "models/ops/bf16_accumulate.h"
#include "models/ops/embedding.h"
#include "models/ops/linear.h"
#include "models/ops/log_softmax.h"
#include "models/ops/lora_linear.h"
#include "models/ops/rmsnorm.h"
#include "models/ops/rope.h"
#include "models/ops/swiglu.h"
#include "models/train/trainable_transformer.h"
#include "partition/parallel.h"

namespace rlrt {
namespace {

bool HasBf16Leaf(const ParamLeaves& grads) {
  return std::ranges::any_of(grads.specs(), [](const LeafSpec& spec) {
    return spec.dtype == DType::kBF16;
  });
}

}  // namespace

Status TrainableTransformer::ValidateBackward(
    std::span<const float> dloss_dlogprob, const ParamLeaves& grads) const {
  if (options_.forward_only) {
    return FailedPreconditionError(
        "this model was created forward_only: it has no backward workspace");
  }
  if (!forward_done_) {
    return FailedPreconditionError("Backward needs a successful Forward first");
  }
  if (weights_.version() != weights_version_) {
    return FailedPreconditionError("the weights changed (version " +
                                   std::to_string(weights_version_) + " -> " +
                                   std::to_string(weights_.version()) +
                                   ") since Forward; run Forward again");
  }
  if (static_cast<int64_t>(dloss_dlogprob.size()) != batch_.num_targets()) {
    return InvalidArgumentError(
        "dloss_dlogprob has " + std::to_string(dloss_dlogprob.size()) +
        " values for the " + std::to_string(batch_.num_targets()) +
        " targets of the last Forward");
  }
  for (size_t i = 0; i < dloss_dlogprob.size(); ++i) {
    if (!std::isfinite(dloss_dlogprob[i])) {
      return InvalidArgumentError("dloss_dlogprob[" + std::to_string(i) +
                                  "] is not finite");
    }
  }
  if (adapter_ != nullptr) {
    if (adapter_->leaves().version() != adapter_version_) {
      return FailedPreconditionError(
          "the adapter changed since Forward; run Forward again");
    }
    if (grads.fingerprint() != adapter_->leaves().fingerprint()) {
      return InvalidArgumentError(
          "with an adapter the base is frozen: gradients must have the "
          "adapter's structure\n" +
          DiffStructures(adapter_->leaves().specs(), grads.specs()));
    }
    if (grads.size() > 0 && grads.data(0) == adapter_->leaves().data(0)) {
      return InvalidArgumentError(
          "gradients must not be the adapter's weights themselves");
    }
    return OkStatus();
  }
  RETURN_IF_ERROR(leaves_.CheckGradientStructure(grads, "gradients"));
  if (grads.size() > 0 && grads.data(0) == weights_.data(0)) {
    return InvalidArgumentError("gradients must not be the weights themselves");
  }
  if (HasBf16Leaf(grads) && workspace_->head_grad == nullptr) {
    return InvalidArgumentError(
        "BF16 gradients need a model with BF16 weights (float32 weights take "
        "float32 gradients)");
  }
  return OkStatus();
}

Status TrainableTransformer::Backward(std::span<const float> dloss_dlogprob,
                                      ParamLeaves& grads) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(ValidateBackward(dloss_dlogprob, grads));
  const int64_t rows = batch_.rows();
  if (rows == 0) return OkStatus();
  TrainWorkspace& w = *workspace_;
  ParamLeaves* base = adapter_ != nullptr ? nullptr : &grads;
  ParamLeaves* lora = adapter_ != nullptr ? &grads : nullptr;
  const int64_t h = config_.hidden_size;
  const int64_t table = config_.vocab_size * h;
  // BF16 gradients: each matrix's dW of this pass is summed in float32
  // scratch and added to its BF16 leaf once, so it is rounded once per pass
  // (models/ops/bf16_accumulate.h). The LM head's runs over every logits
  // chunk (and, tied, the embedding's after the layers), so it has a
  // table-sized scratch of its own, given back to the kernel after use:
  // it is needed only while Backward runs (a learner short of memory keeps
  // those two gradients float32 instead, GrpoLearner). The scratch is
  // zeroed first, as a failed pass may have left sums in it.
  uint16_t* const head_bf16 =
      base != nullptr ? leaves_.GetBf16(*base, ModelParam::kLmHead) : nullptr;
  uint16_t* const embedding_bf16 =
      base != nullptr ? leaves_.GetBf16(*base, ModelParam::kEmbedding)
                      : nullptr;
  if (base != nullptr && HasBf16Leaf(*base)) {
    std::memset(w.matrix_grad, 0, w.matrix_grad_size * sizeof(float));
  }
  if (head_bf16 != nullptr || embedding_bf16 != nullptr) {
    RETURN_IF_ERROR(w.ReleaseHeadGrad());
  }
  float* head_dw = nullptr;
  if (base != nullptr) {
    head_dw = head_bf16 != nullptr ? w.head_grad
                                   : leaves_.Get(*base, ModelParam::kLmHead);
  }
  std::memset(w.grad.residual, 0, rows * h * sizeof(float));
  const int64_t targets = batch_.num_targets();
  const int64_t chunk = LogitsChunkRows();
  for (int64_t first = 0; first < targets; first += chunk) {
    const int64_t n = std::min(chunk, targets - first);
    RETURN_IF_ERROR(HeadForward(first, n));
    RETURN_IF_ERROR(HeadBackward(first, n, dloss_dlogprob, base, head_dw));
  }
  if (head_bf16 != nullptr && !config_.tie_word_embeddings) {
    RETURN_IF_ERROR(AddIntoBf16(w.head_grad, head_bf16, table, mesh_));
    RETURN_IF_ERROR(w.ReleaseHeadGrad());
  }
  for (int64_t l = config_.num_hidden_layers - 1; l >= 0; --l) {
    RETURN_IF_ERROR(LayerForward(l, nullptr));
    RETURN_IF_ERROR(LayerBackward(l, base, lora));
  }
  if (base == nullptr) return OkStatus();
  float* const embedding_dw = embedding_bf16 != nullptr
                                  ? w.head_grad
                                  : leaves_.Get(*base, ModelParam::kEmbedding);
  RETURN_IF_ERROR(EmbeddingBackward(w.grad.residual, h, batch_.tokens(), rows,
                                    embedding_dw, config_.vocab_size, mesh_));
  if (embedding_bf16 == nullptr) return OkStatus();
  RETURN_IF_ERROR(AddIntoBf16(w.head_grad, embedding_bf16, table, mesh_));
  return w.ReleaseHeadGrad();
}

Status TrainableTransformer::HeadBackward(int64_t first, int64_t rows,
                                          std::span<const float> dloss_dlogprob,
                                          ParamLeaves* base, float* head_dw) {
  TrainWorkspace::Head& head = workspace_->head;
  const int64_t h = config_.hidden_size;
  const int64_t vocab = config_.vocab_size;
  const int64_t sampled = sample_vocab();
  const std::span<const int32_t> tokens = batch_.target_tokens();
  // logits -> dLoss/dlogits in place, through z = logits * (1/T). Logits
  // past sample_vocab are outside the softmax: zero gradient.
  RETURN_IF_ERROR(ParallelForOrInline(mesh_, rows, [&](const Shard& s) {
    for (int64_t i = s.begin; i < s.end; ++i) {
      float* z = head.logits + i * vocab;
      TemperLogits(z, sampled, temperature_, z);
      TokenLogprobBackward(z, sampled, tokens[first + i],
                           dloss_dlogprob[first + i], 1.0f / temperature_, z);
      std::fill(z + sampled, z + vocab, 0.0f);
    }
    return OkStatus();
  }));
  RETURN_IF_ERROR(
      LinearBackward({.x = head.normed,
                      .weight = leaves_.Matrix(weights_, ModelParam::kLmHead),
                      .dy = head.logits,
                      .rows = rows,
                      .in = h,
                      .out = vocab,
                      .dx = head.d_normed,
                      .dweight = head_dw,
                      .bf16_products = options_.bf16_backward_products},
                     mesh_));
  RETURN_IF_ERROR(RmsNormGrad(
      head.x, leaves_.Get(weights_, ModelParam::kFinalNorm), head.d_normed,
      head.d_x, false,
      base != nullptr ? leaves_.Get(*base, ModelParam::kFinalNorm) : nullptr,
      rows, h));
  // Targets are distinct rows, so each worker adds into rows of its own.
  float* residual = workspace_->grad.residual;
  const std::span<const int64_t> target_rows = batch_.target_rows();
  return ParallelForOrInline(mesh_, rows, [&](const Shard& s) {
    for (int64_t i = s.begin; i < s.end; ++i) {
      float* dst = residual + target_rows[first + i] * h;
      const float* src = head.d_x + i * h;
      for (int64_t j = 0; j < h; ++j) dst[j] += src[j];
    }
    return OkStatus();
  });
}

Status TrainableTransformer::RmsNormGrad(const float* x, const float* weight,
                                         float* dy, float* dx, bool accumulate,
                                         float* dweight, int64_t rows,
                                         int64_t dim) {
  return RmsNormBackward({.x = x,
                          .weight = weight,
                          .dy = dy,
                          .dx = dx,
                          .accumulate_dx = accumulate,
                          .dweight = dweight,
                          .inv_rms = workspace_->norm_scratch,
                          .rows = rows,
                          .dim = dim,
                          .eps = eps_},
                         mesh_);
}

// Walks LayerForward backwards. On entry grad.residual holds dLoss/d(the
// residual leaving the layer); on exit, dLoss/d(the residual entering it).
Status TrainableTransformer::LayerBackward(int64_t layer, ParamLeaves* base,
                                           ParamLeaves* lora) {
  TrainWorkspace::Layer& a = workspace_->layer;
  TrainWorkspace::LayerGrads& g = workspace_->grad;
  const int64_t rows = batch_.rows();
  const int64_t h = config_.hidden_size, d = config_.head_dim;
  const int64_t heads = config_.num_attention_heads;
  const int64_t kv_heads = config_.num_key_value_heads;
  const int64_t inter = config_.intermediate_size;
  const int64_t q_dim = config_.q_dim(), kv_dim = config_.kv_dim();
  auto w = [&](LayerParam p) { return leaves_.Get(weights_, layer, p); };
  auto dw = [&](LayerParam p) {
    return base != nullptr ? leaves_.Get(*base, layer, p) : nullptr;
  };

  // dx = dy W (+= with accumulate); dW and db add into the gradients.
  // With an adapter on the projection, its path adds to dx and its dA and
  // dB add into `lora`.
  // A BF16 gradient's dW is summed in matrix_grad (zero on entry) and
  // drained into the leaf.
  auto linear_grad = [&](const float* x, LayerParam weight, const float* dy,
                         int64_t in, int64_t out, float* dx, bool accumulate,
                         float* dbias = nullptr) -> Status {
    uint16_t* const dweight_bf16 =
        base != nullptr ? leaves_.GetBf16(*base, layer, weight) : nullptr;
    float* const dweight =
        dweight_bf16 != nullptr ? workspace_->matrix_grad : dw(weight);
    RETURN_IF_ERROR(
        LinearBackward({.x = x,
                        .weight = leaves_.Matrix(weights_, layer, weight),
                        .dy = dy,
                        .rows = rows,
                        .in = in,
                        .out = out,
                        .dx = dx,
                        .accumulate_dx = accumulate,
                        .dweight = dweight,
                        .dbias = dbias,
                        .bf16_products = options_.bf16_backward_products},
                       mesh_));
    if (dweight_bf16 != nullptr) {
      RETURN_IF_ERROR(DrainIntoBf16(dweight, dweight_bf16, in * out, mesh_));
    }
    if (lora == nullptr) return OkStatus();
    const LoraFactors factors = adapter_->Factors(layer, weight);
    if (factors.rank == 0) return OkStatus();
    const auto [a_leaf, b_leaf] = adapter_->LeafIndices(layer, weight);
    return LoraBackward({.factors = factors,
                         .x = x,
                         .dy = dy,
                         .rows = rows,
                         .in = in,
                         .out = out,
                         .u = workspace_->lora_u,
                         .du = workspace_->lora_du,
                         .dx = dx,
                         .da = lora->F32(a_leaf).data(),
                         .db = lora->F32(b_leaf).data()},
                        mesh_);
  };

  // MLP: out = mid + down(silu(gate(n2)) * up(n2)), n2 = norm(mid).
  RETURN_IF_ERROR(linear_grad(a.act, LayerParam::kDownProj, g.residual, inter,
                              h, g.inter, false));
  // dLoss/dgate and dLoss/dup replace gate and up, no longer needed.
  RETURN_IF_ERROR(
      SwigluBackward(a.gate, a.up, g.inter, a.gate, a.up, rows * inter, mesh_));
  RETURN_IF_ERROR(linear_grad(a.normed_mlp, LayerParam::kGateProj, a.gate, h,
                              inter, g.normed, false));
  RETURN_IF_ERROR(linear_grad(a.normed_mlp, LayerParam::kUpProj, a.up, h, inter,
                              g.normed, true));
  RETURN_IF_ERROR(RmsNormGrad(a.mid, w(LayerParam::kPostNorm), g.normed,
                              g.residual, true, dw(LayerParam::kPostNorm), rows,
                              h));

  // Attention: mid = x + o_proj(attention(rope(norm(q)), rope(norm(k)), v)).
  RETURN_IF_ERROR(linear_grad(a.attn, LayerParam::kOProj, g.residual, q_dim, h,
                              g.attn, false));
  RETURN_IF_ERROR(
      CausalAttentionBackward({.q = a.q,
                               .k = a.k,
                               .v = a.v,
                               .d_out = g.attn,
                               .dq = g.q,
                               .dk = g.k,
                               .dv = g.v,
                               .num_heads = heads,
                               .num_kv_heads = kv_heads,
                               .head_dim = d,
                               .sequences = batch_.sequences(),
                               .stats = workspace_->attention_stats,
                               .scratch = workspace_->attention_scratch,
                               .scratch_stride = workspace_->attention_stride},
                              mesh_));
  const float* cos = workspace_->cos;
  const float* sin = workspace_->sin;
  RETURN_IF_ERROR(RopeBackward(g.q, rows, heads, d, cos, sin, mesh_));
  RETURN_IF_ERROR(RopeBackward(g.k, rows, kv_heads, d, cos, sin, mesh_));
  if (config_.qk_norm) {
    RETURN_IF_ERROR(RmsNormGrad(a.q_raw, w(LayerParam::kQNorm), g.q, g.q, false,
                                dw(LayerParam::kQNorm), rows * heads, d));
    RETURN_IF_ERROR(RmsNormGrad(a.k_raw, w(LayerParam::kKNorm), g.k, g.k, false,
                                dw(LayerParam::kKNorm), rows * kv_heads, d));
  }
  RETURN_IF_ERROR(linear_grad(a.normed_attn, LayerParam::kQProj, g.q, h, q_dim,
                              g.normed, false, dw(LayerParam::kQBias)));
  RETURN_IF_ERROR(linear_grad(a.normed_attn, LayerParam::kKProj, g.k, h, kv_dim,
                              g.normed, true, dw(LayerParam::kKBias)));
  RETURN_IF_ERROR(linear_grad(a.normed_attn, LayerParam::kVProj, g.v, h, kv_dim,
                              g.normed, true, dw(LayerParam::kVBias)));
  return RmsNormGrad(workspace_->residual(layer), w(LayerParam::kInputNorm),
                     g.normed, g.residual, true, dw(LayerParam::kInputNorm),
                     rows, h);
}

}  // namespace rlrt
