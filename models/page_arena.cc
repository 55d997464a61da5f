#include "models/page_arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace rlrt {

namespace {

constexpr size_t kHugePageWorthIt = size_t{32} << 20;

}  // namespace

void AdviseHugePages(void* data, size_t size) {
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  if (size < kHugePageWorthIt) return;
  const uintptr_t begin =
      (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end =
      (reinterpret_cast<uintptr_t>(data) + size) & ~(kHuge - 1);
  if (end > begin)
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

StatusOr<PageArena> PageArena::Create(size_t bytes) {
  PageArena arena;
  if (bytes == 0) return arena;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (bytes > SIZE_MAX - page) {
    return ResourceExhaustedError("arena of " + std::to_string(bytes) +
                                  " bytes is too large");
  }
  const size_t rounded = (bytes + page - 1) / page * page;
  void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return ResourceExhaustedError("cannot map " + std::to_string(rounded) +
                                  " bytes: " + std::strerror(errno));
  }
  AdviseHugePages(p, rounded);
  arena.data_ = static_cast<std::byte*>(p);
  arena.size_ = rounded;
  return arena;
}

Status PageArena::Release() {
  if (size_ == 0) return OkStatus();
  if (madvise(data_, size_, MADV_DONTNEED) != 0) {
    return InternalError(std::string("cannot release an arena's pages: ") +
                         std::strerror(errno));
  }
  return OkStatus();
}

PageArena::PageArena(PageArena&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

PageArena& PageArena::operator=(PageArena&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

PageArena::~PageArena() {
  if (data_ != nullptr) munmap(data_, size_);
}

}  // namespace rlrt
