#include "models/ops/attention.h"

#include <algorithm>
#include <cmath>

#include "models/parallel.h"

namespace rlrt {
namespace {

// Sixteen independent lanes summed in a fixed tree: a reduction order that
// does not depend on the compiler's choices, and that it can vectorise.
float Dot(const float* a, const float* b, int64_t n) {
  float lanes[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) lanes[l] += a[i + l] * b[i + l];
  }
  for (int l = 0; i < n; ++i, ++l) lanes[l] += a[i] * b[i];
  for (int width = 8; width > 0; width /= 2) {
    for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  }
  return lanes[0];
}

// Attention of one query head of one row.
void AttendOne(const AttentionArgs& a, const AttentionSequence& seq,
               int64_t row, int64_t head, float* scores) {
  const int64_t d = a.head_dim;
  const int64_t group = a.num_heads / a.num_kv_heads;
  const int64_t kv_head = head / group;
  const int64_t context = seq.start_position + (row - seq.first_row) + 1;
  const float* q = a.q + (row * a.num_heads + head) * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t ps = a.kv.page_size;
  const int64_t head_offset = kv_head * ps * d;

  float max_score = -INFINITY;
  for (int64_t p = 0; p < context; ++p) {
    const float* k = a.kv.keys + seq.pages[p / ps] * a.kv.page_stride +
                     head_offset + (p % ps) * d;
    const float s = Dot(q, k, d) * scale;
    scores[p] = s;
    max_score = std::max(max_score, s);
  }
  float denom = 0;
  for (int64_t p = 0; p < context; ++p) {
    scores[p] = std::exp(scores[p] - max_score);
    denom += scores[p];
  }
  const float inv = 1.0f / denom;
  float* out = a.out + (row * a.num_heads + head) * d;
  std::fill(out, out + d, 0.0f);
  for (int64_t p = 0; p < context; ++p) {
    const float* v = a.kv.values + seq.pages[p / ps] * a.kv.page_stride +
                     head_offset + (p % ps) * d;
    const float w = scores[p] * inv;
    for (int64_t i = 0; i < d; ++i) out[i] += w * v[i];
  }
}

}  // namespace

Status PagedAttentionForward(const AttentionArgs& a, Mesh* mesh) {
  if (a.sequences.empty()) return OkStatus();
  if (a.num_kv_heads <= 0 || a.num_heads % a.num_kv_heads != 0) {
    return InvalidArgumentError("attention: heads not divisible by kv heads");
  }
  const AttentionSequence& last = a.sequences.back();
  const int64_t rows = last.first_row + last.num_new;
  return ParallelForOrInline(mesh, rows * a.num_heads, [&](const Shard& s) {
    float* scores = a.scratch + s.worker * a.scratch_stride;
    // Items are (row, head) pairs in row-major order; find the sequence of
    // the first row once, then walk forward.
    auto seq = std::upper_bound(a.sequences.begin(), a.sequences.end(),
                                s.begin / a.num_heads,
                                [](int64_t row, const AttentionSequence& q) {
                                  return row < q.first_row;
                                }) -
               1;
    for (int64_t item = s.begin; item < s.end; ++item) {
      const int64_t row = item / a.num_heads;
      while (row >= seq->first_row + seq->num_new) ++seq;
      AttendOne(a, *seq, row, item % a.num_heads, scores);
    }
    return OkStatus();
  });
}

}  // namespace rlrt
