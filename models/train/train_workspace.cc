#include "models/train/train_workspace.h"

#include <algorithm>
#include <vector>

namespace rlrt {
namespace {

// Collects (address to set, size) requests, then carves one arena for all,
// each buffer starting on a 64-byte boundary.
class ArenaPlan {
 public:
  template <typename T>
  void Add(T** target, int64_t count) {
    requests_.push_back(
        {reinterpret_cast<void**>(target), (count * sizeof(T) + 63) / 64 * 64});
  }

  StatusOr<PageArena> Carve() {
    size_t total = 0;
    for (const Request& r : requests_) total += r.bytes;
    ASSIGN_OR_RETURN(PageArena arena, PageArena::Create(total));
    std::byte* next = arena.data();
    for (const Request& r : requests_) {
      *r.target = next;
      next += r.bytes;
    }
    return arena;
  }

 private:
  struct Request {
    void** target;
    size_t bytes;
  };
  std::vector<Request> requests_;
};

}  // namespace

StatusOr<std::unique_ptr<TrainWorkspace>> TrainWorkspace::Create(
    const ModelConfig& c, const TrainWorkspaceShape& shape) {
  std::unique_ptr<TrainWorkspace> w(new TrainWorkspace());
  const int64_t t = shape.max_tokens;
  const int64_t h = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(),
                inter = c.intermediate_size;
  w->residual_size_ = t * h;
  w->forward_only_ = shape.forward_only;
  ArenaPlan plan;
  plan.Add(&w->residuals_,
           (shape.forward_only ? 2 : c.num_hidden_layers + 1) * t * h);
  Layer& a = w->layer;
  for (float** p : {&a.normed_attn, &a.mid, &a.normed_mlp}) plan.Add(p, t * h);
  for (float** p : {&a.q_raw, &a.q, &a.attn}) plan.Add(p, t * q);
  for (float** p : {&a.k_raw, &a.k, &a.v}) plan.Add(p, t * kv);
  for (float** p : {&a.gate, &a.up, &a.act}) plan.Add(p, t * inter);
  if (!shape.forward_only) {
    LayerGrads& g = w->grad;
    for (float** p : {&g.residual, &g.normed}) plan.Add(p, t * h);
    for (float** p : {&g.attn, &g.q}) plan.Add(p, t * q);
    for (float** p : {&g.k, &g.v}) plan.Add(p, t * kv);
    plan.Add(&g.inter, t * inter);
  }
  const int64_t chunk = shape.logits_chunk_rows;
  Head& head = w->head;
  for (float** p : {&head.x, &head.normed}) plan.Add(p, chunk * h);
  if (!shape.forward_only) {
    for (float** p : {&head.d_normed, &head.d_x}) plan.Add(p, chunk * h);
  }
  plan.Add(&head.logits, chunk * c.vocab_size);
  plan.Add(&w->cos, t * c.head_dim / 2);
  plan.Add(&w->sin, t * c.head_dim / 2);
  // The backward needs two values per position, the forward one.
  w->attention_stride = shape.forward_only ? t : 2 * t;
  plan.Add(&w->attention_scratch, shape.workers * w->attention_stride);
  plan.Add(&w->attention_stats, t * c.num_attention_heads * 3);
  plan.Add(&w->norm_scratch,
           t * std::max(c.num_attention_heads, c.num_key_value_heads));
  if (shape.lora_rank > 0) {
    plan.Add(&w->lora_u, t * shape.lora_rank);
    plan.Add(&w->lora_du, t * shape.lora_rank);
  }
  if (shape.bf16_grad_scratch && !shape.forward_only) {
    w->matrix_grad_size = std::max({q * h, kv * h, inter * h});
    plan.Add(&w->matrix_grad, w->matrix_grad_size);
    ArenaPlan head_plan;
    head_plan.Add(&w->head_grad, c.vocab_size * h);
    ASSIGN_OR_RETURN(w->head_grad_arena_, head_plan.Carve());
  }
  ASSIGN_OR_RETURN(w->arena_, plan.Carve());
  a.adapters.scratch = w->lora_u;
  return w;
}

}  // namespace rlrt
