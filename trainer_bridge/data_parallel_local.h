// Ranks as threads of one process: the DataParallelGroup the tests use to
// run N learners side by side without MPI (and under ThreadSanitizer). The
// reductions add in rank order exactly as the MPI group does, so both give
// the same bits for the same inputs.
#ifndef RLRT_TRAINER_BRIDGE_DATA_PARALLEL_LOCAL_H_
#define RLRT_TRAINER_BRIDGE_DATA_PARALLEL_LOCAL_H_

#include <memory>
#include <vector>

#include "trainer_bridge/data_parallel.h"

namespace rlrt {

// N groups sharing one rendezvous; give group r to the thread that plays
// rank r. Every rank must make the same calls in the same order (as with
// MPI); a call blocks until all ranks have made it.
std::vector<std::unique_ptr<DataParallelGroup>> CreateLocalGroups(int size);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_DATA_PARALLEL_LOCAL_H_
