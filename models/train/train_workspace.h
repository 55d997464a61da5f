// The buffers of one training micro-batch, sized once for max_tokens rows
// and carved out of one arena, so Forward and Backward allocate nothing.
//
// Memory (floats; T = max_tokens, L = layers, h = hidden, q/kv = q_dim/
// kv_dim, I = intermediate, V = vocab, C = logits chunk rows, W = workers):
//   residual stream at each layer boundary   (L + 1) T h   kept for Backward
//   one layer's activations (recomputed)     T (3h + 3q + 3kv + 3I)
//   one layer's gradients                    T (2h + 2q + 2kv + I)
//   one LM-head chunk                        C (V + 4h)
//   rotary tables, attention and norm stats  T (head_dim + 5 heads) + 2 W T
//   LoRA path, with adapters of rank r       2 T r
//   BF16 gradients' float32 partial sums     the largest layer matrix, and
//                                            V h while a Backward runs
// A forward-only workspace (a frozen reference model) keeps two residual
// buffers, written in turn, and no gradients.
#ifndef RLRT_MODELS_TRAIN_TRAIN_WORKSPACE_H_
#define RLRT_MODELS_TRAIN_TRAIN_WORKSPACE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/status.h"
#include "models/config/model_config.h"
#include "models/decoder/decoder_layer.h"
#include "models/page_arena.h"

namespace rlrt {

struct TrainWorkspaceShape {
  int64_t max_tokens = 0;
  int64_t logits_chunk_rows = 0;
  int workers = 1;
  int64_t lora_rank = 0;  // largest adapter rank; 0: no adapters
  bool forward_only = false;
  // Reserve float32 scratch for BF16 gradients (TrainableTransformer's
  // Backward into BF16 matrices): one layer matrix, and the LM head's
  // (vocab x hidden) in an arena of its own that Backward gives back after
  // each pass. Reserved address space costs nothing until touched.
  bool bf16_grad_scratch = false;
};

class TrainWorkspace {
 public:
  // One layer's forward values, [T, ...] each, none aliased.
  using Layer = LayerActivations;
  // Gradients inside one layer, [T, ...] each.
  struct LayerGrads {
    float* residual;  // dLoss/dx, carried from layer to layer
    float* normed;    // dLoss/d(a norm's output)
    float* inter;     // dLoss/d(act)
    float* attn;      // dLoss/d(attention output)
    float* q;
    float* k;
    float* v;
  };
  // One chunk of LM-head rows, [C, ...] each.
  struct Head {
    float* x;       // final residual rows of the chunk's targets
    float* normed;  // norm(x), the LM head's input
    float* logits;  // [C, V]; tempered, then gradients, in place
    float* d_normed;
    float* d_x;
  };

  static StatusOr<std::unique_ptr<TrainWorkspace>> Create(
      const ModelConfig& config, const TrainWorkspaceShape& shape);

  // The residual stream entering layer l; l = L is the final one. In a
  // forward-only workspace, only the last two written stay valid.
  float* residual(int64_t l) const {
    return residuals_ + (forward_only_ ? l % 2 : l) * residual_size_;
  }
  size_t bytes() const { return arena_.size() + head_grad_arena_.size(); }

  Layer layer{};
  LayerGrads grad{};  // all null in a forward-only workspace
  Head head{};
  float* cos = nullptr;  // [T, head_dim / 2]
  float* sin = nullptr;
  // Per worker: attention scores (forward) or probabilities and their
  // gradients (backward); worker w uses w * attention_stride.
  float* attention_scratch = nullptr;
  int64_t attention_stride = 0;
  float* attention_stats = nullptr;  // [T, heads, 3]
  double* norm_scratch = nullptr;    // [T * heads]: 1/rms per row
  // [T, lora_rank] each: s * (x A^T) and its gradient (layer.adapters'
  // scratch is lora_u).
  float* lora_u = nullptr;
  float* lora_du = nullptr;
  // With bf16_grad_scratch: one layer matrix's dW ([out, in], the largest),
  // and the LM head's and embedding's dW ([vocab, hidden]), each summed in
  // float32 and then added to BF16 gradients once (models/ops/
  // bf16_accumulate.h). head_grad reads as zeros after ReleaseHeadGrad.
  float* matrix_grad = nullptr;
  int64_t matrix_grad_size = 0;
  float* head_grad = nullptr;
  Status ReleaseHeadGrad() { return head_grad_arena_.Release(); }
  // Every buffer reads as zeros and holds no memory until touched.
  Status Release() {
    RETURN_IF_ERROR(arena_.Release());
    return head_grad_arena_.Release();
  }

 private:
  TrainWorkspace() = default;

  PageArena arena_;
  PageArena head_grad_arena_;
  float* residuals_ = nullptr;
  int64_t residual_size_ = 0;
  bool forward_only_ = false;
};

}  // namespace rlrt

#endif  // RLRT_MODELS_TRAIN_TRAIN_WORKSPACE_H_
