// Helpers for running leaf-list passes on a mesh, or inline when no mesh is
// given (single-threaded tools and tests).
#ifndef RLRT_PARTITION_PARALLEL_H_
#define RLRT_PARTITION_PARALLEL_H_

#include <cstdint>

#include "base/function_ref.h"
#include "base/status.h"
#include "partition/mesh.h"

namespace rlrt {

// mesh->ParallelFor(n, fn), or fn({0, n, 0}) on the caller when mesh is null.
inline Status ParallelForOrInline(Mesh* mesh, int64_t n,
                                  FunctionRef<Status(const Shard&)> fn) {
  if (mesh != nullptr) return mesh->ParallelFor(n, fn);
  if (n <= 0) return OkStatus();
  return fn(Shard{0, n, 0});
}

inline int NumWorkers(const Mesh* mesh) {
  return mesh != nullptr ? mesh->size() : 1;
}

}  // namespace rlrt

#endif  // RLRT_PARTITION_PARALLEL_H_
