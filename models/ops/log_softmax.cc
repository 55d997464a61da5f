#include "models/ops/log_softmax.h"

#include <cmath>

namespace rlrt {

namespace {

// The log-sum-exp as its two parts, max and log(sum exp(z - max)): a logprob
// is then (z - max) - log_sum, which stays exact when |max| is huge and
// max + log_sum would round log_sum away.
struct LogSumParts {
  double max;
  double log_sum;
};

LogSumParts LogSumExpParts(const float* logits, int64_t n, double inv_t) {
  double max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::max(max, logits[i] * inv_t);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(logits[i] * inv_t - max);
  return {max, std::log(sum)};
}

}  // namespace

double LogSumExp(const float* logits, int64_t n, float temperature) {
  const LogSumParts p =
      LogSumExpParts(logits, n, 1.0 / static_cast<double>(temperature));
  return p.max + p.log_sum;
}

float TokenLogprob(const float* logits, int64_t n, int32_t token,
                   float temperature) {
  const double inv_t = 1.0 / static_cast<double>(temperature);
  const LogSumParts p = LogSumExpParts(logits, n, inv_t);
  return static_cast<float>((logits[token] * inv_t - p.max) - p.log_sum);
}

void LogSoftmaxRow(const float* logits, int64_t n, float* out,
                   float temperature) {
  const double inv_t = 1.0 / static_cast<double>(temperature);
  const LogSumParts p = LogSumExpParts(logits, n, inv_t);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>((logits[i] * inv_t - p.max) - p.log_sum);
  }
}

int32_t ArgMax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

}  // namespace rlrt
