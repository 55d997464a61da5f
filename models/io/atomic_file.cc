#include "models/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace rlrt {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// Distinguishes temporaries of concurrent writers within one process; the
// pid distinguishes processes.
std::atomic<uint64_t> temp_counter{0};

}  // namespace

StatusOr<AtomicFileWriter> AtomicFileWriter::Create(
    const std::filesystem::path& path) {
  if (path.filename().empty()) {
    return InvalidArgumentError("cannot write to '" + path.string() +
                                "': not a file name");
  }
  std::filesystem::path temp = path;
  temp += ".tmp." + std::to_string(::getpid()) + "." +
          std::to_string(temp_counter.fetch_add(1));
  const int fd =
      ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    return UnavailableError("cannot create " + temp.string() + ": " +
                            ErrnoText(err));
  }
  return AtomicFileWriter(path, std::move(temp), fd);
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)),
      temp_(std::move(other.temp_)),
      fd_(std::exchange(other.fd_, -1)) {}

AtomicFileWriter::~AtomicFileWriter() { Abandon(); }

void AtomicFileWriter::Abandon() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  ::unlink(temp_.c_str());
}

Status AtomicFileWriter::Append(std::span<const std::byte> bytes) {
  if (fd_ < 0) return FailedPreconditionError("writer already finished");
  const std::byte* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    // Linux writes at most ~2 GiB per call; larger requests come back short.
    const ssize_t n = ::write(fd_, p, std::min<size_t>(left, size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      Abandon();
      return UnavailableError("write to " + temp_.string() +
                              " failed: " + ErrnoText(err));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return OkStatus();
}

Status AtomicFileWriter::Commit() {
  if (fd_ < 0) return FailedPreconditionError("writer already finished");
  if (::fsync(fd_) != 0) {
    const int err = errno;
    Abandon();
    return UnavailableError("fsync of " + temp_.string() +
                            " failed: " + ErrnoText(err));
  }
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(temp_.c_str());
    return UnavailableError("close of " + temp_.string() +
                            " failed: " + ErrnoText(err));
  }
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp_.c_str());
    return UnavailableError("cannot rename " + temp_.string() + " to " +
                            path_.string() + ": " + ErrnoText(err));
  }
  // The data is safe either way; failing to sync the directory only risks
  // losing the rename in a crash, so it is not reported.
  std::filesystem::path dir = path_.parent_path();
  if (dir.empty()) dir = ".";
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return OkStatus();
}

Status WriteFileAtomically(const std::filesystem::path& path,
                           std::string_view contents) {
  ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::Create(path));
  RETURN_IF_ERROR(writer.Append(contents));
  return writer.Commit();
}

}  // namespace rlrt
