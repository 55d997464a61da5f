#include "models/ops/log_softmax.h"

#include <algorithm>
#include <cmath>

#include "models/ops/fast_exp.h"

namespace rlrt {

namespace {

// The log-sum-exp as its two parts, max and log(sum exp(z - max)), with
// z = logit * (1 / temperature) rounded to float exactly as the sampler
// computes it: a logprob is then (z - max) - log_sum, which also stays
// exact when |max| is huge and max + log_sum would round log_sum away.
struct LogSumParts {
  float inv_t;
  float max;
  double log_sum;
};

LogSumParts Parts(const float* logits, int64_t n, float temperature) {
  LogSumParts p;
  p.inv_t = 1.0f / temperature;
  p.max = ScaledMax(logits, n, p.inv_t);
  p.log_sum = std::log(ExpShiftedSum(logits, n, p.inv_t, p.max));
  return p;
}

}  // namespace

double LogSumExp(const float* logits, int64_t n, float temperature) {
  const LogSumParts p = Parts(logits, n, temperature);
  return p.max + p.log_sum;
}

float TokenLogprob(const float* logits, int64_t n, int32_t token,
                   float temperature) {
  const LogSumParts p = Parts(logits, n, temperature);
  return static_cast<float>(
      static_cast<double>(logits[token] * p.inv_t - p.max) - p.log_sum);
}

void LogSoftmaxRow(const float* logits, int64_t n, float* out,
                   float temperature) {
  const LogSumParts p = Parts(logits, n, temperature);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(
        static_cast<double>(logits[i] * p.inv_t - p.max) - p.log_sum);
  }
}

void TemperLogits(const float* logits, int64_t n, float temperature, float* z) {
  const float inv_t = 1.0f / temperature;
  for (int64_t i = 0; i < n; ++i) z[i] = logits[i] * inv_t;
}

void TokenLogprobBackward(const float* z, int64_t n, int32_t token,
                          float dlogprob, float scale, float* d_out) {
  // d_out first receives exp(z - max); the softmax is that over the sum.
  const float max = ScaledMax(z, n, 1.0f);
  const double sum = ExpShiftedSum(z, n, 1.0f, max, d_out);
  const double g = static_cast<double>(scale) * dlogprob;
  const double p_token = d_out[token] / sum;
  const double coef = -g / sum;
  for (int64_t i = 0; i < n; ++i)
    d_out[i] = static_cast<float>(coef * d_out[i]);
  // 1 - p rather than 1 + (-p): exact where p is close to 1.
  d_out[token] = static_cast<float>(g * (1.0 - p_token));
}

double SoftmaxEntropy(const float* z, int64_t n) {
  // One normaliser for both sums (not LogSumExp's fast exponentials), so
  // the probabilities sum to 1 and H >= 0 up to rounding.
  const double max = *std::max_element(z, z + n);
  double sum = 0, weighted = 0;
  for (int64_t v = 0; v < n; ++v) {
    const double shifted = double(z[v]) - max;
    const double e = std::exp(shifted);
    sum += e;
    weighted += e * shifted;
  }
  return std::log(sum) - weighted / sum;
}

int32_t ArgMax(const float* logits, int64_t n) {
  // The largest value by a vectorised max, then its first occurrence.
  const float max = ScaledMax(logits, n, 1.0f);
  const float* first = std::find(logits, logits + n, max);
  return first == logits + n ? 0 : static_cast<int32_t>(first - logits);
}

}  // namespace rlrt
