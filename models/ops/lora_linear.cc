#include "models/ops/lora_linear.h"

#include <string>

#include "models/ops/linear.h"

namespace rlrt {
namespace {

Status CheckFactors(const LoraFactors& f, const float* x, int64_t rows,
                    int64_t in, int64_t out, const float* u) {
  if (f.rank <= 0 || f.a == nullptr || f.b == nullptr) {
    return InvalidArgumentError("LoRA factors missing or rank " +
                                std::to_string(f.rank) + " not positive");
  }
  if (rows < 0 || in <= 0 || out <= 0 ||
      (rows > 0 && (x == nullptr || u == nullptr))) {
    return InvalidArgumentError("LoRA path: bad shape or missing buffer");
  }
  return OkStatus();
}

// u = s * (x A^T).
Status DownProject(const LoraFactors& f, const float* x, int64_t rows,
                   int64_t in, float* u, Mesh* mesh) {
  RETURN_IF_ERROR(LinearForward(
      {.x = x, .rows = rows, .in = in, .weight = f.a, .out = f.rank, .y = u},
      mesh));
  // rows x rank values: a few thousand at most, not worth the mesh.
  for (int64_t i = 0; i < rows * f.rank; ++i) u[i] *= f.scale;
  return OkStatus();
}

}  // namespace

Status LoraForward(const LoraForwardArgs& args, Mesh* mesh) {
  const LoraFactors& f = args.factors;
  RETURN_IF_ERROR(
      CheckFactors(f, args.x, args.rows, args.in, args.out, args.u));
  if (args.y == nullptr) return InvalidArgumentError("LoRA path: null y");
  if (args.rows == 0) return OkStatus();
  RETURN_IF_ERROR(DownProject(f, args.x, args.rows, args.in, args.u, mesh));
  return LinearForward({.x = args.u,
                        .rows = args.rows,
                        .in = f.rank,
                        .weight = f.b,
                        .out = args.out,
                        .y = args.y,
                        .accumulate = true},
                       mesh);
}

Status LoraBackward(const LoraBackwardArgs& args, Mesh* mesh) {
  const LoraFactors& f = args.factors;
  RETURN_IF_ERROR(
      CheckFactors(f, args.x, args.rows, args.in, args.out, args.u));
  if (args.dy == nullptr || args.du == nullptr || args.da == nullptr ||
      args.db == nullptr) {
    return InvalidArgumentError("LoRA backward: missing buffer");
  }
  if (args.rows == 0) return OkStatus();
  RETURN_IF_ERROR(DownProject(f, args.x, args.rows, args.in, args.u, mesh));
  // dB += dy^T u; du = dy B.
  RETURN_IF_ERROR(LinearBackward({.x = args.u,
                                  .weight = f.b,
                                  .dy = args.dy,
                                  .rows = args.rows,
                                  .in = f.rank,
                                  .out = args.out,
                                  .dx = args.du,
                                  .dweight = args.db},
                                 mesh));
  for (int64_t i = 0; i < args.rows * f.rank; ++i) args.du[i] *= f.scale;
  // dA += du^T x; dx += du A.
  return LinearBackward({.x = args.x,
                         .weight = f.a,
                         .dy = args.du,
                         .rows = args.rows,
                         .in = args.in,
                         .out = f.rank,
                         .dx = args.dx,
                         .accumulate_dx = true,
                         .dweight = args.da},
                        mesh);
}

}  // namespace rlrt
