#include "models/ops/swiglu.h"

#include <cmath>

#include "models/parallel.h"

namespace rlrt {

Status SwigluForward(const float* gate, const float* up, float* out, int64_t n,
                     Mesh* mesh) {
  constexpr int64_t kBlock = 4096;
  return ParallelForOrInline(
      mesh, (n + kBlock - 1) / kBlock, [&](const Shard& s) {
        const int64_t end = std::min(n, s.end * kBlock);
        for (int64_t i = s.begin * kBlock; i < end; ++i) {
          const float g = gate[i];
          out[i] = g / (1.0f + std::exp(-g)) * up[i];
        }
        return OkStatus();
      });
}

}  // namespace rlrt
