// Starts build/bin/rollout_server as a child process for the tests that
// run the demo against it (ROLLOUT_SERVER_PATH names the binary).
#ifndef RLRT_TESTS_ROLLOUT_SERVER_PROCESS_H_
#define RLRT_TESTS_ROLLOUT_SERVER_PROCESS_H_

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

namespace rlrt::testing {

// Starts build/bin/rollout_server with `flags` on a port the kernel picks
// (--port=0: no collisions between tests running at once); returns its
// pid and the port its server_ready line reports (pid 0 when it did not
// come up).
inline std::pair<int, int> StartServer(const std::string& flags) {
  const std::string command = std::string(ROLLOUT_SERVER_PATH) +
                              " --num_virtual_devices=1 --port=0 " + flags +
                              " 2>/dev/null & echo $!";
  FILE* server = popen(command.c_str(), "r");
  if (server == nullptr) return {0, 0};
  char buf[4096];
  int pid = 0;
  if (fgets(buf, sizeof(buf), server) != nullptr) pid = std::atoi(buf);
  // The server_ready line, once it listens.
  int port = 0;
  if (fgets(buf, sizeof(buf), server) != nullptr) {
    const std::string ready(buf);
    const size_t at = ready.find("\"port\":");
    if (ready.find("server_ready") != std::string::npos &&
        at != std::string::npos)
      port = std::atoi(ready.c_str() + at + 7);
  }
  pclose(server);
  if (port == 0 && pid > 0) kill(pid, SIGTERM);
  return {port != 0 ? pid : 0, port};
}

}  // namespace rlrt::testing

#endif  // RLRT_TESTS_ROLLOUT_SERVER_PROCESS_H_
