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

// The entropy of softmax(z) over the row, in nats:
//   H = log(sum_u exp(z_u)) - sum_v softmax(z)_v * z_v, in double.
double SoftmaxEntropy(const float* z, int64_t n);

// Index of the largest logit (the first one on ties).
int32_t ArgMax(const float* logits, int64_t n);

// Tempered logits z[v] = logits[v] * (1 / temperature), each product rounded
// to float: exactly how the sampler tempers a row (sampler/sampling.cc) before
// it takes the max and the exponential sum of z. TokenLogprob(z, n, token)
// then reproduces the sampler's temperature-only logprob bit for bit.
// TokenLogprob(logits, n, token, temperature) is the same number up to
// rounding only: the compiler may fuse its logits * (1/T) - max into one
// fused multiply-add (GCC does at -O3 with FMA), which rounds once where the
// sampler rounds twice. At temperature 1 the two coincide. z may alias
// logits.
void TemperLogits(const float* logits, int64_t n, float temperature, float* z);

// The gradient of dlogprob * TokenLogprob(z, n, token) with respect to the
// row z, times `scale`:
//   d_out[v] = scale * dlogprob * ([v == token] - softmax(z)[v]).
// With z = TemperLogits(logits) and scale = 1 / temperature this is the
// gradient with respect to the logits. d_out may alias z.
void TokenLogprobBackward(const float* z, int64_t n, int32_t token,
                          float dlogprob, float scale, float* d_out);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_LOG_SOFTMAX_H_
