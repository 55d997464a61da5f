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
#ifndef RLRT_MODELS_OPS_ATTENTION_H_
#define RLRT_MODELS_OPS_ATTENTION_H_

#include <cstdint>
#include <span>

#include "partition/mesh.h"
#include "partition/util/status.h"

namespace rlrt {

struct AttentionSequence {
  int64_t first_row = 0;  // Row of the first new token in q/out.
  int64_t num_new = 0;
  int64_t start_position = 0;
  const int32_t* pages = nullptr;  // Page table, covering every position.
};

// One layer's keys or values in the pool.
struct PagedKvView {
  const float* keys = nullptr;    // Layer base.
  const float* values = nullptr;  // Layer base.
  int64_t page_stride = 0;  // Floats per page: kv_heads * page_size * head_dim.
  int64_t page_size = 0;
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

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_ATTENTION_H_
