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
constexpr uintptr_t kHugePage = uintptr_t{2} << 20;

}  // namespace

void AdviseHugePages(void* data, size_t size) {
  if (size < kHugePageWorthIt) return;
  const uintptr_t begin =
      (reinterpret_cast<uintptr_t>(data) + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end =
      (reinterpret_cast<uintptr_t>(data) + size) & ~(kHugePage - 1);
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
  arena.release_granule_ = rounded >= kHugePageWorthIt ? kHugePage : page;
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

Status PageArena::Release(size_t offset, size_t length) {
  if (offset > size_ || length > size_ - offset) {
    return OutOfRangeError("release range outside the arena");
  }
  // Granules are aligned in the address space, where the kernel's are.
  const uintptr_t g = release_granule_;
  const uintptr_t first = reinterpret_cast<uintptr_t>(data_) + offset;
  const uintptr_t begin = (first + g - 1) / g * g;
  const uintptr_t end = (first + length) / g * g;
  if (end <= begin) return OkStatus();
  if (madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED) !=
      0) {
    return InternalError(std::string("cannot release an arena's pages: ") +
                         std::strerror(errno));
  }
  return OkStatus();
}

PageArena::PageArena(PageArena&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      release_granule_(other.release_granule_) {}

PageArena& PageArena::operator=(PageArena&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    release_granule_ = other.release_granule_;
  }
  return *this;
}

PageArena::~PageArena() {
  if (data_ != nullptr) munmap(data_, size_);
}

}  // namespace rlrt
