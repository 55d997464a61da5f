// Starts a server as a child process for a test and reads the port it
// reports once it listens (servers bind port 0, so tests running at once
// never collide).
#ifndef RLRT_TESTS_LISTENING_PROCESS_H_
#define RLRT_TESTS_LISTENING_PROCESS_H_

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

namespace rlrt::testing {

// Runs `command` in the background (its stderr dropped) and reads its first
// stdout line, which must contain `ready_marker` and a JSON "port" field.
// Returns its pid and that port; pid 0 when it did not come up (then it is
// terminated).
inline std::pair<int, int> StartListeningProcess(
    const std::string& command, std::string_view ready_marker) {
  FILE* child = popen((command + " 2>/dev/null & echo $!").c_str(), "r");
  if (child == nullptr) return {0, 0};
  char buf[4096];
  int pid = 0, port = 0;
  if (fgets(buf, sizeof(buf), child) != nullptr) pid = std::atoi(buf);
  if (fgets(buf, sizeof(buf), child) != nullptr) {
    const std::string ready(buf);
    const size_t at = ready.find("\"port\":");
    if (ready.find(ready_marker) != std::string::npos &&
        at != std::string::npos)
      port = std::atoi(ready.c_str() + at + 7);  // atoi skips the spaces.
  }
  pclose(child);
  if (port == 0 && pid > 0) kill(pid, SIGTERM);
  return {port != 0 ? pid : 0, port};
}

}  // namespace rlrt::testing

#endif  // RLRT_TESTS_LISTENING_PROCESS_H_
