// The low-rank path of a LoRA-adapted projection (Hu et al., 2021), with
// PEFT's semantics: beside the base y = x W^T (+ b),
//   y += s * (x A^T) B^T,   A [rank, in], B [out, rank],
// s = alpha / rank (alpha / sqrt(rank) with rsLoRA). The path is computed as
//   u = s * (x A^T)   [rows, rank]
//   y += u B^T
// with the row-invariant GEMM of LinearForward: a row's result does not
// depend on the other rows, so an adapted decoder keeps the property the
// sampler and the trainer rely on (decode, prefill, batched and training
// forwards give the same bits), and rows of one batch may use different
// adapters without changing each other's results.
//
// The factors are float32 whatever the base's dtype, and x enters the path
// unrounded (the base's BF16 rounding happens inside its own LinearForward).
//
// Backward (base frozen), from the same u recomputed from x:
//   dB += dy^T u,   du = s * (dy B),   dA += du^T x,   dx += du A.
#ifndef RLRT_MODELS_OPS_LORA_LINEAR_H_
#define RLRT_MODELS_OPS_LORA_LINEAR_H_

#include <cstdint>

#include "base/status.h"
#include "partition/mesh.h"

namespace rlrt {

// One projection's adapter; rank 0 means the projection is not adapted.
struct LoraFactors {
  const float* a = nullptr;  // [rank, in]
  const float* b = nullptr;  // [out, rank]
  int64_t rank = 0;
  float scale = 0.0f;
};

struct LoraForwardArgs {
  LoraFactors factors;
  const float* x = nullptr;  // [rows, in]
  int64_t rows = 0;
  int64_t in = 0;
  int64_t out = 0;
  float* u = nullptr;  // [rows, rank] scratch; receives s * (x A^T)
  float* y = nullptr;  // [rows, out], added into
};

// y += s (x A^T) B^T. Runs on `mesh` (inline when null).
Status LoraForward(const LoraForwardArgs& args, Mesh* mesh);

struct LoraBackwardArgs {
  LoraFactors factors;
  const float* x = nullptr;   // [rows, in], the forward's input
  const float* dy = nullptr;  // [rows, out]
  int64_t rows = 0;
  int64_t in = 0;
  int64_t out = 0;
  float* u = nullptr;   // [rows, rank] scratch
  float* du = nullptr;  // [rows, rank] scratch
  float* dx = nullptr;  // [rows, in] or null: dx += du A
  float* da = nullptr;  // [rank, in]: added into
  float* db = nullptr;  // [out, rank]: added into
};

// Runs on `mesh` (inline when null). Per-output summation orders are fixed
// (LinearBackward), so the gradients do not depend on the worker count.
Status LoraBackward(const LoraBackwardArgs& args, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_LORA_LINEAR_H_
