// Starts the reference reward service (examples/reward_server.py) for the
// tests that score through it.
#ifndef RLRT_TESTS_REWARD_SERVER_PROCESS_H_
#define RLRT_TESTS_REWARD_SERVER_PROCESS_H_

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

namespace rlrt::testing {

// Its pid and the port it reports once listening (pid 0 when it did not
// come up: no python3, or it failed).
inline std::pair<int, int> StartRewardServer() {
  const std::string command = "python3 " RLRT_SOURCE_DIR
                              "/examples/reward_server.py --port=0 "
                              "2>/dev/null & echo $!";
  FILE* server = popen(command.c_str(), "r");
  if (server == nullptr) return {0, 0};
  char buf[512];
  int pid = 0, port = 0;
  if (fgets(buf, sizeof(buf), server) != nullptr) pid = std::atoi(buf);
  if (fgets(buf, sizeof(buf), server) != nullptr) {
    const std::string ready(buf);
    const size_t at = ready.find("\"port\": ");
    if (at != std::string::npos) port = std::atoi(ready.c_str() + at + 8);
  }
  pclose(server);
  if (port == 0 && pid > 0) kill(pid, SIGTERM);
  return {port != 0 ? pid : 0, port};
}

}  // namespace rlrt::testing

#endif  // RLRT_TESTS_REWARD_SERVER_PROCESS_H_
