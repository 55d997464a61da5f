#include "examples/child_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>
#include <utility>

#include "base/timing.h"

namespace rlrt {

StatusOr<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                           const std::string& stdout_path,
                                           const std::string& stderr_path) {
  if (argv.empty()) return InvalidArgumentError("no program to run");
  // Everything the child needs is prepared before fork: between fork and
  // exec only async-signal-safe calls are allowed (the parent has threads).
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int out = ::open(stdout_path.c_str(),
                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int err = ::open(stderr_path.c_str(),
                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0 || err < 0) {
    const int e = errno;
    if (out >= 0) ::close(out);
    if (err >= 0) ::close(err);
    return UnavailableError("cannot open the logs " + stdout_path + ", " +
                            stderr_path + ": " + std::strerror(e));
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    ::execv(args[0], args.data());
    _exit(127);
  }
  const int fork_error = errno;
  ::close(out);
  ::close(err);
  if (pid < 0)
    return UnavailableError(std::string("fork failed: ") +
                            std::strerror(fork_error));
  return ChildProcess(pid);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      exit_status_(std::move(other.exit_status_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !exit_status_) Wait(0.001);
    pid_ = std::exchange(other.pid_, -1);
    exit_status_ = std::move(other.exit_status_);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exit_status_) Wait(0.001);
}

void ChildProcess::Signal(int signal) const {
  if (pid_ > 0 && !exit_status_) ::kill(pid_, signal);
}

std::optional<int> ChildProcess::Poll() {
  if (exit_status_ || pid_ <= 0) return exit_status_;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = WIFEXITED(status)     ? WEXITSTATUS(status)
                   : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                         : 255;
  } else if (r < 0) {
    exit_status_ = 255;  // Not our child any more (reaped elsewhere).
  }
  return exit_status_;
}

int ChildProcess::Wait(double timeout_seconds) {
  const auto start = SteadyClock::now();
  for (;;) {
    if (std::optional<int> s = Poll()) return *s;
    if (timeout_seconds > 0 && SecondsSince(start) > timeout_seconds) {
      ::kill(pid_, SIGKILL);
      timeout_seconds = 0;  // Now wait for the kill to land.
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

StatusOr<int64_t> ResidentKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return NotFoundError("no VmRSS for pid " + std::to_string(pid));
}

StatusOr<int> FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return UnavailableError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok =
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) return UnavailableError("cannot bind a loopback port");
  return static_cast<int>(ntohs(addr.sin_port));
}

}  // namespace rlrt
