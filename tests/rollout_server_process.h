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

// Starts build/bin/rollout_server with `flags` on a free port; returns its
// pid and port (pid 0 when it did not come up).
inline std::pair<int, int> StartServer(const std::string& flags, int salt) {
  const int port = 20000 + (getpid() + salt) % 20000;
  const std::string command =
      std::string(ROLLOUT_SERVER_PATH) +
      " --num_virtual_devices=1 --port=" + std::to_string(port) + " " + flags +
      " 2>/dev/null & echo $!";
  FILE* server = popen(command.c_str(), "r");
  if (server == nullptr) return {0, port};
  char buf[4096];
  int pid = 0;
  if (fgets(buf, sizeof(buf), server) != nullptr) pid = std::atoi(buf);
  // The server_ready line, once it listens.
  const bool ready = fgets(buf, sizeof(buf), server) != nullptr &&
                     std::string(buf).find("server_ready") != std::string::npos;
  pclose(server);
  if (!ready && pid > 0) kill(pid, SIGTERM);
  return {ready ? pid : 0, port};
}

}  // namespace rlrt::testing

#endif  // RLRT_TESTS_ROLLOUT_SERVER_PROCESS_H_
