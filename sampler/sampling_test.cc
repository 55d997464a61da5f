#include "sampler/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>

namespace rlrt {
namespace {

std::vector<float> RandomLogits(int64_t n, uint32_t seed, float scale = 2.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// An independent statement of the truncations, written the way Hugging
// Face's warpers are: full sorts, top-p on the ascending cumulative sum
// (remove tokens whose cumulative mass from the bottom is <= 1 - top_p),
// min-p on probabilities. Returns token -> probability of the final
// distribution.
std::map<int32_t, double> ReferenceDistribution(
    const std::vector<float>& logits, const SamplingParams& p) {
  const int64_t n = logits.size();
  std::vector<double> z(n);
  for (int64_t i = 0; i < n; ++i) z[i] = double(logits[i] / p.temperature);
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return z[a] > z[b] || (z[a] == z[b] && a < b);
  });
  std::vector<int32_t> kept = order;
  if (p.top_k > 0 && p.top_k < n) kept.resize(p.top_k);
  auto probs = [&](const std::vector<int32_t>& ids) {
    double m = -INFINITY, s = 0;
    for (int32_t i : ids) m = std::max(m, z[i]);
    for (int32_t i : ids) s += std::exp(z[i] - m);
    std::map<int32_t, double> out;
    for (int32_t i : ids) out[i] = std::exp(z[i] - m) / s;
    return out;
  };
  if (p.top_p < 1) {
    auto pr = probs(kept);
    std::vector<int32_t> ascending(kept.rbegin(), kept.rend());
    double cum = 0;
    std::vector<int32_t> survivors;
    for (size_t j = 0; j < ascending.size(); ++j) {
      cum += pr[ascending[j]];
      const bool last = j + 1 == ascending.size();
      if (cum > 1.0 - p.top_p || last) survivors.push_back(ascending[j]);
    }
    kept = survivors;
  }
  if (p.min_p > 0) {
    auto pr = probs(kept);
    double top = 0;
    for (auto& [i, q] : pr) top = std::max(top, q);
    std::vector<int32_t> survivors;
    for (int32_t i : kept) {
      if (pr[i] >= p.min_p * top) survivors.push_back(i);
    }
    kept = survivors;
  }
  return probs(kept);
}

class SamplingTest : public ::testing::Test {
 protected:
  SamplingScratch scratch_{1000};
};

TEST_F(SamplingTest, GreedyTakesTheArgmaxAndReportsTheTemperatureOneLogprob) {
  auto logits = RandomLogits(500, 1);
  const int32_t best =
      std::max_element(logits.begin(), logits.end()) - logits.begin();
  SamplingParams p;
  p.temperature = 0;
  auto r = SampleToken(logits.data(), 500, p, 0, scratch_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->token, best);
  double z = 0;
  for (float l : logits) z += std::exp(double(l));
  EXPECT_NEAR(r->logprob, logits[best] - std::log(z), 1e-5);
}

TEST_F(SamplingTest, ReportedLogprobIsThatOfTheTruncatedDistribution) {
  auto logits = RandomLogits(400, 2);
  const SamplingParams cases[] = {
      {1.0f, 0, 1.0f, 0.0f, 1},  {0.7f, 0, 1.0f, 0.0f, 2},
      {1.3f, 20, 1.0f, 0.0f, 3}, {0.8f, 0, 0.9f, 0.0f, 4},
      {1.0f, 0, 0.5f, 0.0f, 5},  {1.0f, 0, 1.0f, 0.05f, 6},
      {0.6f, 50, 0.8f, 0.1f, 7}, {1.0f, 1, 1.0f, 0.0f, 8},
      {1.5f, 0, 0.999f, 0.0f, 9}};
  for (const SamplingParams& p : cases) {
    const auto expected = ReferenceDistribution(logits, p);
    for (uint64_t step = 0; step < 50; ++step) {
      auto r = SampleToken(logits.data(), 400, p, step, scratch_);
      ASSERT_TRUE(r.ok());
      ASSERT_TRUE(expected.count(r->token))
          << "drew a truncated token, seed " << p.seed;
      EXPECT_NEAR(r->logprob, std::log(expected.at(r->token)), 1e-5);
      // The trainer's recomputation gives the very same number.
      auto again = SampledLogprob(logits.data(), 400, p, r->token, scratch_);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(*again, r->logprob);
    }
    // Tokens outside the kept set have logprob -inf.
    for (int32_t t = 0; t < 400; ++t) {
      if (expected.count(t)) continue;
      EXPECT_EQ(*SampledLogprob(logits.data(), 400, p, t, scratch_), -INFINITY);
      break;
    }
  }
}

TEST_F(SamplingTest, DrawsFollowTheDistribution) {
  // 20000 draws over 8 tokens: each frequency within 5 standard errors.
  const std::vector<float> logits = {0.1f, 1.5f,  -0.3f, 2.0f,
                                     0.0f, -1.0f, 1.0f,  0.5f};
  for (const SamplingParams& p : {SamplingParams{1.0f, 0, 1.0f, 0.0f, 11},
                                  SamplingParams{0.5f, 0, 1.0f, 0.0f, 12},
                                  SamplingParams{1.0f, 3, 1.0f, 0.0f, 13},
                                  SamplingParams{1.0f, 0, 0.7f, 0.0f, 14}}) {
    const auto expected = ReferenceDistribution(logits, p);
    std::map<int32_t, int> counts;
    const int draws = 20000;
    for (int s = 0; s < draws; ++s) {
      counts[SampleToken(logits.data(), 8, p, s, scratch_)->token]++;
    }
    for (int32_t t = 0; t < 8; ++t) {
      const double q = expected.count(t) ? expected.at(t) : 0.0;
      const double se = std::sqrt(q * (1 - q) / draws) + 1e-9;
      EXPECT_NEAR(counts[t] / double(draws), q, 5 * se + 1e-4) << "token " << t;
    }
  }
}

TEST_F(SamplingTest, TemperatureComesBeforeTopP) {
  // At temperature 1 token 0 alone holds 60% > top_p; at temperature 3 the
  // flatter distribution needs token 1 too. Applying top-p before the
  // temperature would keep only token 0 in both cases.
  const std::vector<float> logits = {1.0f, 0.0f, -0.5f, -1.0f};
  SamplingParams p{1.0f, 0, 0.5f, 0.0f, 0};
  std::set<int32_t> seen;
  for (int s = 0; s < 200; ++s)
    seen.insert(SampleToken(logits.data(), 4, p, s, scratch_)->token);
  EXPECT_EQ(seen, std::set<int32_t>({0}));
  p.temperature = 3.0f;
  seen.clear();
  for (int s = 0; s < 200; ++s)
    seen.insert(SampleToken(logits.data(), 4, p, s, scratch_)->token);
  EXPECT_EQ(seen, std::set<int32_t>({0, 1}));
}

TEST_F(SamplingTest, DrawsArePureFunctionsOfSeedAndStep) {
  auto logits = RandomLogits(300, 3);
  SamplingParams p{1.0f, 0, 0.95f, 0.0f, 42};
  std::vector<int32_t> first, second;
  for (uint64_t step = 0; step < 100; ++step) {
    first.push_back(SampleToken(logits.data(), 300, p, step, scratch_)->token);
  }
  // Interleaved with another request's draws: same tokens.
  SamplingScratch other(300);
  SamplingParams q = p;
  q.seed = 7;
  for (uint64_t step = 0; step < 100; ++step) {
    (void)SampleToken(logits.data(), 300, q, step, other);
    second.push_back(SampleToken(logits.data(), 300, p, step, scratch_)->token);
  }
  EXPECT_EQ(first, second);
  std::vector<int32_t> other_seed;
  for (uint64_t step = 0; step < 100; ++step) {
    other_seed.push_back(
        SampleToken(logits.data(), 300, q, step, scratch_)->token);
  }
  EXPECT_NE(first, other_seed);
}

TEST_F(SamplingTest, OnlyIdsBelowTheVocabularyAreDrawn) {
  std::vector<float> logits(100, 0.0f);
  logits[90] = 50.0f;  // Huge, but past the tokenizer's vocabulary of 80.
  for (int s = 0; s < 100; ++s) {
    auto r =
        SampleToken(logits.data(), 80, {1.0f, 0, 1.0f, 0.0f, 1}, s, scratch_);
    ASSERT_TRUE(r.ok());
    EXPECT_LT(r->token, 80);
  }
}

TEST_F(SamplingTest, MaskedLogitsAreNeverDrawn) {
  std::vector<float> logits = {-INFINITY, 0.0f, -INFINITY, 0.0f};
  for (int s = 0; s < 100; ++s) {
    const int32_t t = SampleToken(logits.data(), 4, {}, s, scratch_)->token;
    EXPECT_TRUE(t == 1 || t == 3);
  }
}

TEST_F(SamplingTest, BadInputIsAnErrorNotACrash) {
  std::vector<float> logits = {0.0f, 1.0f};
  const SamplingParams bad[] = {
      {-1.0f, 0, 1.0f, 0.0f, 0},    {NAN, 0, 1.0f, 0.0f, 0},
      {INFINITY, 0, 1.0f, 0.0f, 0}, {1.0f, -1, 1.0f, 0.0f, 0},
      {1.0f, 0, 0.0f, 0.0f, 0},     {1.0f, 0, 1.5f, 0.0f, 0},
      {1.0f, 0, 1.0f, 1.0f, 0},     {1.0f, 0, 1.0f, -0.1f, 0}};
  for (const SamplingParams& p : bad) {
    EXPECT_FALSE(SampleToken(logits.data(), 2, p, 0, scratch_).ok());
    EXPECT_FALSE(SampledLogprob(logits.data(), 2, p, 0, scratch_).ok());
  }
  std::vector<float> nan_logits = {0.0f, NAN};
  EXPECT_FALSE(SampleToken(nan_logits.data(), 2, {}, 0, scratch_).ok());
  std::vector<float> all_masked = {-INFINITY, -INFINITY};
  EXPECT_FALSE(SampleToken(all_masked.data(), 2, {}, 0, scratch_).ok());
  EXPECT_FALSE(SampleToken(logits.data(), 0, {}, 0, scratch_).ok());
  EXPECT_FALSE(SampledLogprob(logits.data(), 2, {}, 2, scratch_).ok());
}

}  // namespace
}  // namespace rlrt
