// Child processes for drivers that run our binaries as a user would (the
// soak): start with output to a log file, signal, reap, and read resident
// memory from /proc.
#ifndef RLRT_EXAMPLES_CHILD_PROCESS_H_
#define RLRT_EXAMPLES_CHILD_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace rlrt {

class ChildProcess {
 public:
  // Runs argv[0] (a path) with argv; stdout goes to `stdout_path`, stderr
  // to `stderr_path` (both appended to).
  static StatusOr<ChildProcess> Start(const std::vector<std::string>& argv,
                                      const std::string& stdout_path,
                                      const std::string& stderr_path);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // SIGKILLs and reaps a child still running.
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  void Signal(int signal) const;
  // The exit status once it has ended (a signal number s as 128 + s), or
  // nullopt while it runs. Never blocks.
  std::optional<int> Poll();
  // Blocks until it ends; after `timeout_seconds` (> 0) it is SIGKILLed.
  int Wait(double timeout_seconds = 0);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// VmRSS of `pid` in KiB, from /proc/<pid>/status.
StatusOr<int64_t> ResidentKib(pid_t pid);

// A TCP port on 127.0.0.1 that was free a moment ago.
StatusOr<int> FreeLoopbackPort();

}  // namespace rlrt

#endif  // RLRT_EXAMPLES_CHILD_PROCESS_H_
