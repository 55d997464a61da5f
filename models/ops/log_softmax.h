// Log-softmax over a row of logits, optionally at a temperature:
//   logprob(v) = z_v - log(sum_u exp(z_u)),  z = logits / temperature.
// The sampler reports, and the trainer computes, logprobs with these very
// functions, so the two agree bit for bit on equal logits.
#ifndef RLRT_MODELS_OPS_LOG_SOFTMAX_H_
#define RLRT_MODELS_OPS_LOG_SOFTMAX_H_

#include <cstdint>

namespace rlrt {

// log(sum exp(logits / temperature)), with the max subtracted for range, the
// exponentials from models/ops/fast_exp.h and the sum in double.
double LogSumExp(const float* logits, int64_t n, float temperature = 1.0f);

// The logprob of `token` in the row.
float TokenLogprob(const float* logits, int64_t n, int32_t token,
                   float temperature = 1.0f);

// out[v] = logprob(v) for the whole row.
void LogSoftmaxRow(const float* logits, int64_t n, float* out,
                   float temperature = 1.0f);

// Index of the largest logit (the first one on ties).
int32_t ArgMax(const float* logits, int64_t n);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_LOG_SOFTMAX_H_
