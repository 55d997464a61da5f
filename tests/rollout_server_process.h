// Starts build/bin/rollout_server as a child process for the tests that
// run the demo against it (ROLLOUT_SERVER_PATH names the binary).
#ifndef RLRT_TESTS_ROLLOUT_SERVER_PROCESS_H_
#define RLRT_TESTS_ROLLOUT_SERVER_PROCESS_H_

#include <string>
#include <utility>

#include "tests/listening_process.h"

namespace rlrt::testing {

// Starts build/bin/rollout_server with `flags` on a port the kernel picks
// (--port=0: no collisions between tests running at once); returns its
// pid and the port its server_ready line reports (pid 0 when it did not
// come up).
inline std::pair<int, int> StartServer(const std::string& flags) {
  return StartListeningProcess(std::string(ROLLOUT_SERVER_PATH) +
                                   " --num_virtual_devices=1 --port=0 " + flags,
                               "server_ready");
}

}  // namespace rlrt::testing

#endif  // RLRT_TESTS_ROLLOUT_SERVER_PROCESS_H_
