// BLAS must never run threads of its own: each call runs single-threaded on
// the mesh worker that makes it, and parallelism comes from the mesh. We link
// OpenBLAS's OpenMP flavour (no pool at load time, safe for concurrent
// callers) and pin it to one thread here; Mesh::Create calls this.
#ifndef RLRT_PARTITION_BLAS_THREADING_H_
#define RLRT_PARTITION_BLAS_THREADING_H_

namespace rlrt {

// Makes BLAS calls from the calling thread single-threaded. The setting is
// per thread (see the .cc), so it must run on every thread that calls BLAS:
// each mesh worker does so when it starts. A BLAS call from any other thread
// may start OpenMP threads; model code therefore calls BLAS only inside
// Mesh::ParallelFor. Idempotent and thread-safe.
void ForceSingleThreadedBlas();

// The thread count OpenBLAS would use for a call right now.
int BlasThreadCount();

}  // namespace rlrt

#endif  // RLRT_PARTITION_BLAS_THREADING_H_
