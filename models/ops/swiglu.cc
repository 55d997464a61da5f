#include "models/ops/swiglu.h"

#include <cmath>

#include "partition/parallel.h"

namespace rlrt {
namespace {

// Runs fn(i) for i in [0, n) in blocks of 4096 across the mesh.
template <typename Fn>
Status ForEachElement(int64_t n, Mesh* mesh, Fn&& fn) {
  constexpr int64_t kBlock = 4096;
  return ParallelForOrInline(mesh, (n + kBlock - 1) / kBlock,
                             [&](const Shard& s) {
                               const int64_t end = std::min(n, s.end * kBlock);
                               for (int64_t i = s.begin * kBlock; i < end; ++i)
                                 fn(i);
                               return OkStatus();
                             });
}

}  // namespace

Status SwigluForward(const float* gate, const float* up, float* out, int64_t n,
                     Mesh* mesh) {
  return ForEachElement(n, mesh, [&](int64_t i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  });
}

Status SwigluBackward(const float* gate, const float* up, const float* d_out,
                      float* d_gate, float* d_up, int64_t n, Mesh* mesh) {
  return ForEachElement(n, mesh, [&](int64_t i) {
    const float g = gate[i];
    const float u = up[i];
    const float dy = d_out[i];
    // For g << 0, e^-g overflows to inf and s to 0: every term stays finite.
    const float s = 1.0f / (1.0f + std::exp(-g));
    d_gate[i] = dy * u * (s * (1.0f + g * (1.0f - s)));
    d_up[i] = dy * (g * s);
  });
}

}  // namespace rlrt
