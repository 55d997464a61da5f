// The machine's own limits, measured in the same run as a benchmark so its
// headline can be a ratio to them, plus the FLOP count of a forward pass.
#ifndef RLRT_BENCHMARKS_BENCH_LIMITS_H_
#define RLRT_BENCHMARKS_BENCH_LIMITS_H_

#include <cstdint>
#include <memory>

#include "models/config/model_config.h"
#include "partition/mesh.h"

namespace rlrt {

// A mesh of the first `devices` local cores (fewer when the machine has
// fewer).
std::unique_ptr<Mesh> BenchMesh(int devices);

// Single-threaded OpenBLAS sgemm GFLOP/s on one mesh worker (so it runs as
// the model's matmuls do), measured once per run.
double SgemmPeakGflops();

// BF16 dot-product GFLOP/s of one core (a loop of independent vdpbf16ps,
// 64 FLOPs each), measured once per run on one mesh worker; 0 on a build
// without AVX-512 BF16.
double Bf16DotPeakGflops();

// Bytes one thread's memcpy moves per second over 512 MB, measured once.
double MemcpyBytesPerSecond();

// Bytes per second `devices` cores read together when each streams through
// its own part of a 1 GB buffer (summing it, so nothing is written): the
// limit a batch-1 decode, which reads every weight once per token, runs
// into. Measured once per device count, best of 5, on a mesh of that size.
double StreamReadBytesPerSecond(int devices);

// FLOPs actually executed: per token, every layer's matmuls (2 * weights)
// and attention (4 * context * q_dim); per logit row, the LM head.
double ForwardFlops(const ModelConfig& config, double tokens, double logit_rows,
                    int64_t context);

}  // namespace rlrt

#endif  // RLRT_BENCHMARKS_BENCH_LIMITS_H_
