#include "partition/blas_threading.h"

#include <mutex>

// Declared here rather than through <cblas.h> so that only this file depends
// on which OpenBLAS flavour's headers are on the include path.
extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}

namespace rlrt {

// The OpenMP flavour of OpenBLAS, on every call, adopts the calling thread's
// omp_get_max_threads() as its thread count, and openblas_set_num_threads
// sets that OpenMP value only for the thread that calls it. So a single
// process-wide call is not enough: each thread that runs BLAS (every mesh
// worker) must apply the setting itself, or its first call would reset the
// count to the core count and start an OpenMP team.
void ForceSingleThreadedBlas() {
  thread_local bool applied_on_this_thread = false;
  if (applied_on_this_thread) return;
  // Only the first call changes the count and so frees OpenBLAS's buffers
  // for the other threads; later calls from other threads then only read
  // those buffers, so they may run while BLAS is busy elsewhere.
  static std::once_flag first_call;
  bool applied = false;
  std::call_once(first_call, [&] {
    openblas_set_num_threads(1);
    applied = true;
  });
  if (!applied) openblas_set_num_threads(1);
  applied_on_this_thread = true;
}

int BlasThreadCount() { return openblas_get_num_threads(); }

}  // namespace rlrt
