// Causal grouped-query attention over a paged KV cache, for a ragged batch:
// each sequence brings `num_new` query rows whose keys and values are already
// written into its pages at positions start_position .. start_position +
// num_new - 1, after the start_position cached ones. Query row i of a
// sequence attends to positions 0 .. start_position + i.
//
// Shapes: q, out [rows, num_heads * head_dim]; a page holds, per KV head,
// page_size consecutive positions of head_dim floats. Query head h reads KV
// head h / (num_heads / num_kv_heads), as in Hugging Face's repeat_kv.
// Scores use scale 1/sqrt(head_dim); softmax subtracts the max and sums in
// float. Prefill and decode run this same code, so they agree.
//
// Training runs whole sequences through the same kernel: a contiguous
// [rows, kv_heads * head_dim] buffer is a paged cache with one position per
// page (ContiguousKvView, page id = row), so the trainer's attention is the
// sampler's bit for bit. Its gradient (CausalAttentionBackward) recomputes
// the probabilities rather than storing them (T^2 per head), in two passes:
//   1. per (query row i, head): P_ij as the forward computes it, dP_ij =
//      dO_i . v_j, D_i = sum_j P_ij dP_ij, dS_ij = P_ij (dP_ij - D_i),
//      dq_i = scale * sum_j dS_ij k_j; keeps (max, 1/denominator, D) per
//      (row, head).
//   2. per (key row j, kv head): the same P_ij and dS_ij from those stats,
//      dk_j = scale * sum_{i >= j, heads of the group} dS_ij q_i,
//      dv_j = sum P_ij dO_i.
// Each output vector is summed in double by one worker in a fixed order, so
// the bits do not depend on the worker count.
#ifndef RLRT_MODELS_OPS_ATTENTION_H_
#define RLRT_MODELS_OPS_ATTENTION_H_

#include <cstdint>
#include <span>

#include "base/status.h"
#include "models/dtype.h"
#include "partition/mesh.h"

namespace rlrt {

struct AttentionSequence {
  int64_t first_row = 0;  // Row of the first new token in q/out.
  int64_t num_new = 0;
  int64_t start_position = 0;
  const int32_t* pages = nullptr;  // Page table, covering every position.
};

// One layer's keys or values in the pool.
struct PagedKvView {
  const void* keys = nullptr;    // Layer base.
  const void* values = nullptr;  // Layer base.
  // Elements per page: kv_heads * page_size * head_dim.
  int64_t page_stride = 0;
  int64_t page_size = 0;
  // float32, or BF16 (widened exactly as read: attention over a BF16 cache
  // equals attention over float32 rows holding the same values, bit for
  // bit).
  DType dtype = DType::kF32;
};

struct AttentionArgs {
  const float* q = nullptr;
  float* out = nullptr;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  std::span<const AttentionSequence> sequences;  // Sorted by first_row.
  PagedKvView kv;
  // Per-worker score buffers: worker w uses scratch + w * scratch_stride,
  // which must hold the longest context.
  float* scratch = nullptr;
  int64_t scratch_stride = 0;
};

Status PagedAttentionForward(const AttentionArgs& args, Mesh* mesh);

// Keys and values stored contiguously, [rows, kv_heads * head_dim], as a
// paged view with page_size 1: a sequence whose rows start at first_row
// uses the page table first_row, first_row + 1, ... (see ContiguousPages).
PagedKvView ContiguousKvView(const float* keys, const float* values,
                             int64_t kv_dim);

// pages[i] = i for i < n: the page table of every contiguous sequence
// (offset by its first row).
void ContiguousPages(int32_t* pages, int64_t n);

// Longest head_dim the backward supports (its per-vector sums live on the
// stack).
inline constexpr int64_t kMaxAttentionHeadDim = 512;

struct AttentionBackwardArgs {
  // Contiguous rows: q, d_out, dq [rows, num_heads * head_dim]; k, v, dk, dv
  // [rows, num_kv_heads * head_dim]. d* are overwritten.
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  const float* d_out = nullptr;
  float* dq = nullptr;
  float* dk = nullptr;
  float* dv = nullptr;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  // Whole sequences (start_position 0), sorted by first_row and covering
  // rows 0 .. rows - 1; pages are not read.
  std::span<const AttentionSequence> sequences;
  // [rows * num_heads * 3] scratch: the softmax stats between the passes.
  float* stats = nullptr;
  // Per-worker buffers: worker w uses scratch + w * scratch_stride, which
  // must hold 2 x the longest sequence.
  float* scratch = nullptr;
  int64_t scratch_stride = 0;
};

Status CausalAttentionBackward(const AttentionBackwardArgs& args, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_ATTENTION_H_
