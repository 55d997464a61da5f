// Starts the reference reward service (examples/reward_server.py) for the
// tests that score through it.
#ifndef RLRT_TESTS_REWARD_SERVER_PROCESS_H_
#define RLRT_TESTS_REWARD_SERVER_PROCESS_H_

#include <utility>

#include "tests/listening_process.h"

namespace rlrt::testing {

// Its pid and port (pid 0 when it did not come up: no python3, or it
// failed).
inline std::pair<int, int> StartRewardServer() {
  return StartListeningProcess("python3 " RLRT_SOURCE_DIR
                               "/examples/reward_server.py --port=0",
                               "\"ready\"");
}

}  // namespace rlrt::testing

#endif  // RLRT_TESTS_REWARD_SERVER_PROCESS_H_
