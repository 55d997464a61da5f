#include "models/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/ops/fixed_order_dot.h"
#include "partition/parallel.h"

namespace rlrt {
namespace {

template <typename T>
float Dot(const float* a, const T* b, int64_t n) {
  return gemm_internal::FixedOrderDot(a, b, n);
}

// Scores s_p = (q . k_p) * scale for p < context, then e_p = exp(s_p - max)
// in place; returns the max and 1 / sum_p e_p. The forward and the backward
// both call this, so the backward's probabilities e_p * inv are the
// forward's bit for bit. key(p) gives the address of position p's key.
struct SoftmaxStats {
  float max;
  float inv_sum;
};

template <typename KeyAt>
SoftmaxStats ExpScores(const float* q, KeyAt key, int64_t context, int64_t d,
                       float scale, float* scores) {
  using Key = decltype(key(0));
  constexpr int kKeysAtOnce = 8;
  int64_t p = 0;
  for (; p + kKeysAtOnce <= context; p += kKeysAtOnce) {
    Key keys[kKeysAtOnce];
    for (int j = 0; j < kKeysAtOnce; ++j) keys[j] = key(p + j);
    gemm_internal::FixedOrderDots<kKeysAtOnce>(q, keys, d, scores + p);
  }
  for (; p < context; ++p) scores[p] = Dot(q, key(p), d);
  float max_score = -INFINITY;
  for (p = 0; p < context; ++p) {
    scores[p] *= scale;
    max_score = std::max(max_score, scores[p]);
  }
  float denom = 0;
  for (int64_t p = 0; p < context; ++p) {
    scores[p] = std::exp(scores[p] - max_score);
    denom += scores[p];
  }
  return {max_score, 1.0f / denom};
}

float Scale(int64_t head_dim) {
  return 1.0f / std::sqrt(static_cast<float>(head_dim));
}

// Position p's row of one KV head in a paged cache. Callers walk positions
// in order, so the page is looked up once per page rather than divided out
// for every position (a 64-bit division costs about as much as the dot
// product of a 128-element key). Entering a page, the head's block of the
// next page is prefetched: pages are scattered, and the hardware
// prefetcher stops at each 4 KiB boundary (a BF16 page of 16 positions of
// 128 elements is exactly one), so without this every page starts with
// cache misses, and a decode step over long contexts waits on them.
template <typename T>
class PagedRows {
 public:
  // `context` bounds the positions whose pages exist (and may be
  // prefetched).
  PagedRows(const void* base, const int32_t* pages, int64_t page_size,
            int64_t page_stride, int64_t head_offset, int64_t head_dim,
            int64_t context)
      : base_(static_cast<const T*>(base) + head_offset),
        pages_(pages),
        page_size_(page_size),
        page_stride_(page_stride),
        head_dim_(head_dim),
        last_page_((context - 1) / page_size),
        prefetch_(page_size > 1),
        page_first_(-page_size) {}

  const T* operator()(int64_t p) {
    if (p < page_first_ || p >= page_first_ + page_size_) {
      const int64_t page = p / page_size_;
      page_first_ = page * page_size_;
      page_base_ = base_ + pages_[page] * page_stride_;
      if (prefetch_ && page < last_page_)
        Prefetch(base_ + pages_[page + 1] * page_stride_);
    }
    return page_base_ + (p - page_first_) * head_dim_;
  }

 private:
  void Prefetch(const T* block) const {
    constexpr int64_t kLine = 64;
    const char* bytes = reinterpret_cast<const char*>(block);
    const int64_t size = page_size_ * head_dim_ * int64_t{sizeof(T)};
    for (int64_t at = 0; at < size; at += kLine) __builtin_prefetch(bytes + at);
  }

  const T* base_;
  const int32_t* pages_;
  int64_t page_size_, page_stride_, head_dim_;
  int64_t last_page_;
  // A contiguous view (the trainer's, page_size 1) is one stream the
  // hardware prefetcher follows; prefetching each row there only costs.
  bool prefetch_;
  // First position of the page looked up last; initially a page before 0,
  // so that the first call looks one up.
  int64_t page_first_;
  const T* page_base_ = nullptr;
};

// Attention of one query head of one row, over a cache of elements T.
template <typename T>
void AttendOne(const AttentionArgs& a, const AttentionSequence& seq,
               int64_t row, int64_t head, float* scores) {
  const int64_t d = a.head_dim;
  const int64_t group = a.num_heads / a.num_kv_heads;
  const int64_t kv_head = head / group;
  const int64_t context = seq.start_position + (row - seq.first_row) + 1;
  const float* q = a.q + (row * a.num_heads + head) * d;
  const int64_t ps = a.kv.page_size;
  const int64_t head_offset = kv_head * ps * d;
  PagedRows<T> keys(a.kv.keys, seq.pages, ps, a.kv.page_stride, head_offset, d,
                    context);
  PagedRows<T> values(a.kv.values, seq.pages, ps, a.kv.page_stride, head_offset,
                      d, context);
  const SoftmaxStats stats = ExpScores(
      q, [&](int64_t p) { return keys(p); }, context, d, Scale(d), scores);
  for (int64_t p = 0; p < context; ++p) scores[p] *= stats.inv_sum;
  gemm_internal::WeightedRowSum(
      scores, [&](int64_t p) { return values(p); }, context, d,
      a.out + (row * a.num_heads + head) * d);
}

// The sequence holding `row`.
const AttentionSequence& SequenceOf(std::span<const AttentionSequence> seqs,
                                    int64_t row) {
  return *(std::upper_bound(seqs.begin(), seqs.end(), row,
                            [](int64_t r, const AttentionSequence& s) {
                              return r < s.first_row;
                            }) -
           1);
}

// Pass 1 of the backward for query row `row`, head `head`: dq and the stats.
void QueryGradient(const AttentionBackwardArgs& a, int64_t row, int64_t head,
                   float* scratch) {
  const int64_t d = a.head_dim;
  const int64_t kv_dim = a.num_kv_heads * d;
  const int64_t kv_head = head / (a.num_heads / a.num_kv_heads);
  const AttentionSequence& seq = SequenceOf(a.sequences, row);
  const int64_t context = row - seq.first_row + 1;
  const float* keys = a.k + seq.first_row * kv_dim + kv_head * d;
  const float* values = a.v + seq.first_row * kv_dim + kv_head * d;
  const int64_t at = (row * a.num_heads + head) * d;
  float* probs = scratch;
  float* dprobs = scratch + context;
  const float scale = Scale(d);
  const SoftmaxStats stats = ExpScores(
      a.q + at, [&](int64_t p) { return keys + p * kv_dim; }, context, d, scale,
      probs);
  double weighted = 0;  // D = sum_p P_p dP_p
  for (int64_t p = 0; p < context; ++p) {
    probs[p] *= stats.inv_sum;
    dprobs[p] = Dot(a.d_out + at, values + p * kv_dim, d);
    weighted += static_cast<double>(probs[p]) * dprobs[p];
  }
  const float dot = static_cast<float>(weighted);
  double acc[kMaxAttentionHeadDim] = {};
  for (int64_t p = 0; p < context; ++p) {
    const double ds = probs[p] * (dprobs[p] - dot);
    const float* k = keys + p * kv_dim;
    for (int64_t i = 0; i < d; ++i) acc[i] += ds * k[i];
  }
  for (int64_t i = 0; i < d; ++i)
    a.dq[at + i] = static_cast<float>(scale * acc[i]);
  float* st = a.stats + (row * a.num_heads + head) * 3;
  st[0] = stats.max;
  st[1] = stats.inv_sum;
  st[2] = dot;
}

// Pass 2 for key row `row`, KV head `kv_head`: dk and dv from every later
// query row of the sequence and every query head of the group.
void KeyValueGradient(const AttentionBackwardArgs& a, int64_t row,
                      int64_t kv_head) {
  const int64_t d = a.head_dim;
  const int64_t kv_at = (row * a.num_kv_heads + kv_head) * d;
  const int64_t group = a.num_heads / a.num_kv_heads;
  const AttentionSequence& seq = SequenceOf(a.sequences, row);
  const float scale = Scale(d);
  const float* k = a.k + kv_at;
  const float* v = a.v + kv_at;
  double dk[kMaxAttentionHeadDim] = {};
  double dv[kMaxAttentionHeadDim] = {};
  for (int64_t i = row; i < seq.first_row + seq.num_new; ++i) {
    for (int64_t h = kv_head * group; h < (kv_head + 1) * group; ++h) {
      const int64_t at = (i * a.num_heads + h) * d;
      const float* st = a.stats + (i * a.num_heads + h) * 3;
      const float* q = a.q + at;
      const float* dout = a.d_out + at;
      const float s = Dot(q, k, d) * scale;
      const float p = std::exp(s - st[0]) * st[1];
      const double ds = p * (Dot(dout, v, d) - st[2]);
      for (int64_t x = 0; x < d; ++x) {
        dk[x] += ds * q[x];
        dv[x] += static_cast<double>(p) * dout[x];
      }
    }
  }
  for (int64_t x = 0; x < d; ++x) {
    a.dk[kv_at + x] = static_cast<float>(scale * dk[x]);
    a.dv[kv_at + x] = static_cast<float>(dv[x]);
  }
}

Status ValidateBackward(const AttentionBackwardArgs& a) {
  if (a.num_kv_heads <= 0 || a.num_heads % a.num_kv_heads != 0) {
    return InvalidArgumentError("attention: heads not divisible by kv heads");
  }
  if (a.head_dim <= 0 || a.head_dim > kMaxAttentionHeadDim) {
    return InvalidArgumentError("attention backward: head_dim " +
                                std::to_string(a.head_dim) + " not in [1, " +
                                std::to_string(kMaxAttentionHeadDim) + "]");
  }
  int64_t next_row = 0;
  for (const AttentionSequence& s : a.sequences) {
    if (s.start_position != 0 || s.first_row != next_row || s.num_new <= 0) {
      return InvalidArgumentError(
          "attention backward: sequences must be whole, non-empty and "
          "contiguous from row 0");
    }
    if (2 * s.num_new > a.scratch_stride) {
      return InvalidArgumentError(
          "attention backward: scratch_stride too small for a sequence of " +
          std::to_string(s.num_new));
    }
    next_row += s.num_new;
  }
  return OkStatus();
}

}  // namespace

Status PagedAttentionForward(const AttentionArgs& a, Mesh* mesh) {
  if (a.sequences.empty()) return OkStatus();
  if (a.num_kv_heads <= 0 || a.num_heads % a.num_kv_heads != 0) {
    return InvalidArgumentError("attention: heads not divisible by kv heads");
  }
  if (a.kv.dtype != DType::kF32 && a.kv.dtype != DType::kBF16) {
    return InvalidArgumentError("attention: the KV cache must be F32 or BF16");
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
      if (a.kv.dtype == DType::kBF16) {
        AttendOne<uint16_t>(a, *seq, row, item % a.num_heads, scores);
      } else {
        AttendOne<float>(a, *seq, row, item % a.num_heads, scores);
      }
    }
    return OkStatus();
  });
}

PagedKvView ContiguousKvView(const float* keys, const float* values,
                             int64_t kv_dim) {
  return PagedKvView{keys, values, kv_dim, 1};
}

void ContiguousPages(int32_t* pages, int64_t n) {
  for (int64_t i = 0; i < n; ++i) pages[i] = static_cast<int32_t>(i);
}

Status CausalAttentionBackward(const AttentionBackwardArgs& a, Mesh* mesh) {
  if (a.sequences.empty()) return OkStatus();
  RETURN_IF_ERROR(ValidateBackward(a));
  const AttentionSequence& last = a.sequences.back();
  const int64_t rows = last.first_row + last.num_new;
  // Items run head-major, so each worker gets whole heads when it can: the
  // cost of a row grows with its position, and whole heads balance that.
  RETURN_IF_ERROR(
      ParallelForOrInline(mesh, a.num_heads * rows, [&](const Shard& s) {
        float* scratch = a.scratch + s.worker * a.scratch_stride;
        for (int64_t item = s.begin; item < s.end; ++item) {
          QueryGradient(a, item % rows, item / rows, scratch);
        }
        return OkStatus();
      }));
  return ParallelForOrInline(mesh, a.num_kv_heads * rows, [&](const Shard& s) {
    for (int64_t item = s.begin; item < s.end; ++item) {
      KeyValueGradient(a, item % rows, item / rows);
    }
    return OkStatus();
  });
}

}  // namespace rlrt
