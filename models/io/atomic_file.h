// Writing a file so that readers see either the old file or the complete
// new one, never a torn mixture: bytes go to a temporary file beside the
// target, which is flushed to disk and then renamed over it.
#ifndef RLRT_MODELS_IO_ATOMIC_FILE_H_
#define RLRT_MODELS_IO_ATOMIC_FILE_H_

#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

#include "base/status.h"

namespace rlrt {

class AtomicFileWriter {
 public:
  // Creates "<path>.tmp.<pid>.<n>" in the target's directory (which must
  // exist), so the final rename never crosses file systems.
  static StatusOr<AtomicFileWriter> Create(const std::filesystem::path& path);

  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  // Without a successful Commit, removes the temporary file: the target
  // stays as it was.
  ~AtomicFileWriter();

  Status Append(std::span<const std::byte> bytes);
  Status Append(std::string_view text) {
    return Append(std::as_bytes(std::span(text.data(), text.size())));
  }
  // fsync, rename over the target, fsync the directory (so the rename itself
  // survives a crash). The writer is finished afterwards, whatever the result.
  Status Commit();

 private:
  AtomicFileWriter(std::filesystem::path path, std::filesystem::path temp,
                   int fd)
      : path_(std::move(path)), temp_(std::move(temp)), fd_(fd) {}
  void Abandon();

  std::filesystem::path path_;
  std::filesystem::path temp_;
  int fd_ = -1;
};

// The whole file in one call.
Status WriteFileAtomically(const std::filesystem::path& path,
                           std::string_view contents);

}  // namespace rlrt

#endif  // RLRT_MODELS_IO_ATOMIC_FILE_H_
