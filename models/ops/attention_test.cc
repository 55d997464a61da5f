#include "models/ops/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "models/ops/op_test_util.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

constexpr int64_t kHeads = 6, kKvHeads = 2, kDim = 8, kPageSize = 4,
                  kPages = 40;

// Contiguous per-sequence keys/values [positions, kv_heads, dim], scattered
// into a page pool through shuffled page tables.
struct Scenario {
  std::vector<float> pool_k, pool_v;
  std::vector<std::vector<int32_t>> tables;
  std::vector<std::vector<float>> seq_k, seq_v;
  std::vector<AttentionSequence> seqs;
  std::vector<float> q;
  int64_t rows = 0;
};

Scenario Make(const std::vector<std::pair<int64_t, int64_t>>& start_and_new) {
  Scenario s;
  const int64_t page_stride = kKvHeads * kPageSize * kDim;
  s.pool_k.assign(kPages * page_stride,
                  NAN);  // Unused slots poison the result.
  s.pool_v.assign(kPages * page_stride, NAN);
  std::vector<int32_t> ids(kPages);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(5));
  size_t next_page = 0;
  uint32_t seed = 10;
  for (auto [start, n] : start_and_new) {
    const int64_t len = start + n;
    std::vector<int32_t> table;
    for (int64_t p = 0; p < (len + kPageSize - 1) / kPageSize; ++p)
      table.push_back(ids[next_page++]);
    auto k = testing::RandomVector(len * kKvHeads * kDim, seed++);
    auto v = testing::RandomVector(len * kKvHeads * kDim, seed++);
    for (int64_t pos = 0; pos < len; ++pos) {
      for (int64_t h = 0; h < kKvHeads; ++h) {
        const int64_t base = table[pos / kPageSize] * page_stride +
                             (h * kPageSize + pos % kPageSize) * kDim;
        std::copy_n(&k[(pos * kKvHeads + h) * kDim], kDim, &s.pool_k[base]);
        std::copy_n(&v[(pos * kKvHeads + h) * kDim], kDim, &s.pool_v[base]);
      }
    }
    s.tables.push_back(table);
    s.seq_k.push_back(k);
    s.seq_v.push_back(v);
    s.seqs.push_back(AttentionSequence{s.rows, n, start, nullptr});
    s.rows += n;
  }
  for (size_t i = 0; i < s.seqs.size(); ++i)
    s.seqs[i].pages = s.tables[i].data();
  s.q = testing::RandomVector(s.rows * kHeads * kDim, 99);
  return s;
}

// Textbook causal GQA attention in double over the contiguous copies.
std::vector<double> Reference(const Scenario& s) {
  std::vector<double> out(s.rows * kHeads * kDim, 0.0);
  for (size_t i = 0; i < s.seqs.size(); ++i) {
    const AttentionSequence& seq = s.seqs[i];
    for (int64_t j = 0; j < seq.num_new; ++j) {
      const int64_t row = seq.first_row + j;
      const int64_t context = seq.start_position + j + 1;
      for (int64_t h = 0; h < kHeads; ++h) {
        const int64_t kh = h / (kHeads / kKvHeads);
        std::vector<double> w(context);
        for (int64_t p = 0; p < context; ++p) {
          double dot = 0;
          for (int64_t d = 0; d < kDim; ++d) {
            dot += double(s.q[(row * kHeads + h) * kDim + d]) *
                   s.seq_k[i][(p * kKvHeads + kh) * kDim + d];
          }
          w[p] = dot / std::sqrt(double(kDim));
        }
        const double m = *std::max_element(w.begin(), w.end());
        double z = 0;
        for (double& x : w) z += (x = std::exp(x - m));
        for (int64_t p = 0; p < context; ++p) {
          for (int64_t d = 0; d < kDim; ++d) {
            out[(row * kHeads + h) * kDim + d] +=
                w[p] / z * s.seq_v[i][(p * kKvHeads + kh) * kDim + d];
          }
        }
      }
    }
  }
  return out;
}

std::vector<float> RunAttention(const Scenario& s, Mesh* mesh) {
  std::vector<float> out(s.rows * kHeads * kDim);
  std::vector<float> scratch(16 * 64);
  AttentionArgs a;
  a.q = s.q.data();
  a.out = out.data();
  a.num_heads = kHeads;
  a.num_kv_heads = kKvHeads;
  a.head_dim = kDim;
  a.sequences = s.seqs;
  a.kv = PagedKvView{s.pool_k.data(), s.pool_v.data(),
                     kKvHeads * kPageSize * kDim, kPageSize};
  a.scratch = scratch.data();
  a.scratch_stride = 64;
  EXPECT_TRUE(PagedAttentionForward(a, mesh).ok());
  return out;
}

TEST(AttentionTest, RaggedBatchMatchesTextbookAttention) {
  // A prefill from scratch, a decode step deep into a sequence, and a chunk
  // continuing a cached prefix; page boundaries fall inside each.
  Scenario s = Make({{0, 9}, {17, 1}, {6, 5}});
  const std::vector<double> expected = Reference(s);
  for (int workers : {0, 1, 3}) {
    auto mesh = workers > 0 ? testing::MakeMesh(workers) : nullptr;
    std::vector<float> out = RunAttention(s, mesh.get());
    EXPECT_LT(testing::MaxAbsDiff(out.data(), expected.data(), out.size()),
              1e-5)
        << workers;
  }
}

TEST(AttentionTest, EachSequenceIsIndependentOfItsNeighbours) {
  Scenario batch = Make({{0, 9}, {17, 1}, {6, 5}});
  std::vector<float> together = RunAttention(batch, nullptr);
  // The middle sequence alone (same pages, same data).
  Scenario alone = batch;
  alone.seqs = {AttentionSequence{0, 1, 17, batch.tables[1].data()}};
  alone.q.assign(batch.q.begin() + 9 * kHeads * kDim,
                 batch.q.begin() + 10 * kHeads * kDim);
  alone.rows = 1;
  std::vector<float> single = RunAttention(alone, nullptr);
  for (int64_t i = 0; i < kHeads * kDim; ++i)
    EXPECT_EQ(single[i], together[9 * kHeads * kDim + i]);
}

TEST(AttentionTest, RejectsIndivisibleHeads) {
  AttentionArgs a;
  AttentionSequence seq{0, 1, 0, nullptr};
  a.sequences = {&seq, 1};
  a.num_heads = 5;
  a.num_kv_heads = 2;
  EXPECT_FALSE(PagedAttentionForward(a, nullptr).ok());
}

}  // namespace
}  // namespace rlrt
