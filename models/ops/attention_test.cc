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

std::vector<float> Attend(const std::vector<float>& q, int64_t rows,
                          std::span<const AttentionSequence> seqs,
                          const PagedKvView& kv, Mesh* mesh) {
  std::vector<float> out(rows * kHeads * kDim);
  std::vector<float> scratch(16 * 64);
  AttentionArgs a;
  a.q = q.data();
  a.out = out.data();
  a.num_heads = kHeads;
  a.num_kv_heads = kKvHeads;
  a.head_dim = kDim;
  a.sequences = seqs;
  a.kv = kv;
  a.scratch = scratch.data();
  a.scratch_stride = 64;
  EXPECT_TRUE(PagedAttentionForward(a, mesh).ok());
  return out;
}

std::vector<float> RunAttention(const Scenario& s, Mesh* mesh) {
  return Attend(s.q, s.rows, s.seqs,
                PagedKvView{s.pool_k.data(), s.pool_v.data(),
                            kKvHeads * kPageSize * kDim, kPageSize},
                mesh);
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

// Whole sequences stored contiguously, as the trainer holds them.
struct Contiguous {
  std::vector<AttentionSequence> seqs;
  std::vector<int32_t> pages;
  std::vector<float> q, k, v;
  int64_t rows = 0;
};

Contiguous MakeContiguous(const std::vector<int64_t>& lengths, uint32_t seed) {
  Contiguous c;
  for (int64_t n : lengths) {
    c.seqs.push_back(AttentionSequence{c.rows, n, 0, nullptr});
    c.rows += n;
  }
  c.pages.resize(c.rows);
  ContiguousPages(c.pages.data(), c.rows);
  for (AttentionSequence& s : c.seqs) s.pages = c.pages.data() + s.first_row;
  c.q = testing::RandomVector(c.rows * kHeads * kDim, seed);
  c.k = testing::RandomVector(c.rows * kKvHeads * kDim, seed + 1);
  c.v = testing::RandomVector(c.rows * kKvHeads * kDim, seed + 2);
  return c;
}

std::vector<float> ContiguousForward(const Contiguous& c, Mesh* mesh) {
  return Attend(c.q, c.rows, c.seqs,
                ContiguousKvView(c.k.data(), c.v.data(), kKvHeads * kDim),
                mesh);
}

// Textbook causal GQA attention in double over contiguous sequences.
std::vector<double> DoubleAttention(const Contiguous& c,
                                    const std::vector<double>& q,
                                    const std::vector<double>& k,
                                    const std::vector<double>& v) {
  const int64_t kv_dim = kKvHeads * kDim;
  std::vector<double> out(c.rows * kHeads * kDim, 0.0);
  for (const AttentionSequence& s : c.seqs) {
    for (int64_t i = 0; i < s.num_new; ++i) {
      for (int64_t h = 0; h < kHeads; ++h) {
        const int64_t kh = h / (kHeads / kKvHeads);
        const double* qi = &q[((s.first_row + i) * kHeads + h) * kDim];
        std::vector<double> w(i + 1);
        for (int64_t j = 0; j <= i; ++j) {
          const double* kj = &k[(s.first_row + j) * kv_dim + kh * kDim];
          double dot = 0;
          for (int64_t x = 0; x < kDim; ++x) dot += qi[x] * kj[x];
          w[j] = dot / std::sqrt(double(kDim));
        }
        const double m = *std::max_element(w.begin(), w.end());
        double z = 0;
        for (double& x : w) z += (x = std::exp(x - m));
        double* o = &out[((s.first_row + i) * kHeads + h) * kDim];
        for (int64_t j = 0; j <= i; ++j) {
          const double* vj = &v[(s.first_row + j) * kv_dim + kh * kDim];
          for (int64_t x = 0; x < kDim; ++x) o[x] += w[j] / z * vj[x];
        }
      }
    }
  }
  return out;
}

TEST(AttentionTest, ContiguousSequencesRunThroughThePagedKernel) {
  // Page size 1 with page id = row: the same results as the same sequences
  // scattered over shuffled pages of 4, bit for bit.
  Scenario paged = Make({{0, 9}, {0, 5}});
  Contiguous c = MakeContiguous({9, 5}, 1);
  c.q = paged.q;
  c.k = paged.seq_k[0];
  c.k.insert(c.k.end(), paged.seq_k[1].begin(), paged.seq_k[1].end());
  c.v = paged.seq_v[0];
  c.v.insert(c.v.end(), paged.seq_v[1].begin(), paged.seq_v[1].end());
  EXPECT_TRUE(testing::SameBits(ContiguousForward(c, nullptr),
                                RunAttention(paged, nullptr)));
  const std::vector<double> want =
      DoubleAttention(c, testing::ToDouble(c.q), testing::ToDouble(c.k),
                      testing::ToDouble(c.v));
  const std::vector<float> got = ContiguousForward(c, nullptr);
  EXPECT_LT(testing::MaxAbsDiff(got.data(), want.data(), got.size()), 1e-5);
}

// Gradients and scratch for one backward call over c, and its arguments.
struct Backward {
  std::vector<float> dq, dk, dv, stats, scratch;
  AttentionBackwardArgs args;

  Backward(const Contiguous& c, const std::vector<float>& d_out)
      : dq(c.q.size()),
        dk(c.k.size()),
        dv(c.v.size()),
        stats(c.rows * kHeads * 3),
        scratch(16 * 64) {
    args.q = c.q.data();
    args.k = c.k.data();
    args.v = c.v.data();
    args.d_out = d_out.data();
    args.dq = dq.data();
    args.dk = dk.data();
    args.dv = dv.data();
    args.num_heads = kHeads;
    args.num_kv_heads = kKvHeads;
    args.head_dim = kDim;
    args.sequences = c.seqs;
    args.stats = stats.data();
    args.scratch = scratch.data();
    args.scratch_stride = 64;
  }
};

TEST(AttentionBackwardTest, MatchesFiniteDifferencesOfADoubleForward) {
  // Three sequences (one of a single token) in one batch, GQA 6:2.
  const Contiguous c = MakeContiguous({5, 9, 1}, 20);
  const auto d_out = testing::RandomVector(c.rows * kHeads * kDim, 30);
  const auto q = testing::ToDouble(c.q), k = testing::ToDouble(c.k),
             v = testing::ToDouble(c.v);
  const auto want_dq = testing::NumericalGradient(
      [&](const std::vector<double>& x) {
        return testing::Project(DoubleAttention(c, x, k, v), d_out);
      },
      q);
  const auto want_dk = testing::NumericalGradient(
      [&](const std::vector<double>& x) {
        return testing::Project(DoubleAttention(c, q, x, v), d_out);
      },
      k);
  const auto want_dv = testing::NumericalGradient(
      [&](const std::vector<double>& x) {
        return testing::Project(DoubleAttention(c, q, k, x), d_out);
      },
      v);
  testing::ExpectSameBitsForAnyWorkerCount([&](Mesh* mesh) {
    Backward g(c, d_out);
    const Status status = CausalAttentionBackward(g.args, mesh);
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_LT(testing::MaxRelativeError(g.dq, want_dq), 1e-5);
    EXPECT_LT(testing::MaxRelativeError(g.dk, want_dk), 1e-5);
    EXPECT_LT(testing::MaxRelativeError(g.dv, want_dv), 1e-5);
    g.dq.insert(g.dq.end(), g.dk.begin(), g.dk.end());
    g.dq.insert(g.dq.end(), g.dv.begin(), g.dv.end());
    return g.dq;
  });
}

TEST(AttentionBackwardTest, RejectsPartialSequencesAndSmallScratch) {
  Contiguous c = MakeContiguous({4}, 40);
  const std::vector<float> d_out(c.q.size());
  Backward g(c, d_out);
  AttentionBackwardArgs& a = g.args;
  a.scratch_stride = 8;
  EXPECT_TRUE(CausalAttentionBackward(a, nullptr).ok());
  a.scratch_stride = 7;  // Needs 2 x 4.
  EXPECT_FALSE(CausalAttentionBackward(a, nullptr).ok());
  a.scratch_stride = 8;
  c.seqs[0].start_position = 2;  // A chunk after cached tokens.
  a.sequences = c.seqs;
  EXPECT_FALSE(CausalAttentionBackward(a, nullptr).ok());
}

// The textbook gradients of causal GQA attention in double: the check at a
// length where finite differences would be slow (the formulas themselves
// are checked against finite differences above).
std::vector<double> DoubleAttentionBackward(const Contiguous& c,
                                            const std::vector<float>& d_out) {
  const int64_t kv_dim = kKvHeads * kDim;
  std::vector<double> dq(c.q.size()), dk(c.k.size()), dv(c.v.size());
  const double scale = 1.0 / std::sqrt(double(kDim));
  for (const AttentionSequence& s : c.seqs) {
    for (int64_t i = s.first_row; i < s.first_row + s.num_new; ++i) {
      for (int64_t h = 0; h < kHeads; ++h) {
        const int64_t kh = h / (kHeads / kKvHeads);
        const float* q = &c.q[(i * kHeads + h) * kDim];
        const float* dout = &d_out[(i * kHeads + h) * kDim];
        const int64_t n = i - s.first_row + 1;
        std::vector<double> p(n), dp(n);
        double m = -INFINITY, z = 0, weighted = 0;
        for (int64_t j = 0; j < n; ++j) {
          const int64_t at = (s.first_row + j) * kv_dim + kh * kDim;
          for (int64_t x = 0; x < kDim; ++x) {
            p[j] += double(q[x]) * c.k[at + x] * scale;
            dp[j] += double(dout[x]) * c.v[at + x];
          }
          m = std::max(m, p[j]);
        }
        for (double& x : p) z += (x = std::exp(x - m));
        for (int64_t j = 0; j < n; ++j) weighted += (p[j] /= z) * dp[j];
        for (int64_t j = 0; j < n; ++j) {
          const int64_t at = (s.first_row + j) * kv_dim + kh * kDim;
          const double ds = p[j] * (dp[j] - weighted) * scale;
          for (int64_t x = 0; x < kDim; ++x) {
            dq[(i * kHeads + h) * kDim + x] += ds * c.k[at + x];
            dk[at + x] += ds * q[x];
            dv[at + x] += p[j] * dout[x];
          }
        }
      }
    }
  }
  dq.insert(dq.end(), dk.begin(), dk.end());
  dq.insert(dq.end(), dv.begin(), dv.end());
  return dq;
}

TEST(AttentionBackwardTest, LongSequencesMatchTheTextbookGradients) {
  const Contiguous c = MakeContiguous({300, 45}, 50);
  const auto d_out = testing::RandomVector(c.rows * kHeads * kDim, 60);
  const std::vector<double> want = DoubleAttentionBackward(c, d_out);
  std::vector<float> got;
  Backward g(c, d_out);
  g.scratch.resize(16 * 600);
  g.args.scratch = g.scratch.data();
  g.args.scratch_stride = 600;
  auto mesh = testing::MakeMesh(2);
  ASSERT_TRUE(CausalAttentionBackward(g.args, mesh.get()).ok());
  for (const auto* part : {&g.dq, &g.dk, &g.dv})
    got.insert(got.end(), part->begin(), part->end());
  EXPECT_LT(testing::MaxRelativeError(got, want), 1e-5);
}

}  // namespace
}  // namespace rlrt
