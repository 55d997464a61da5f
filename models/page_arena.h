// PageArena: one anonymous memory mapping that holds many buffers.
// Pages come from the kernel already zeroed and are faulted in on first
// touch, so allocating a large model is nearly free and its first writes
// (dummy init, a load, an update) can be spread across a mesh's workers.
#ifndef RLRT_MODELS_PAGE_ARENA_H_
#define RLRT_MODELS_PAGE_ARENA_H_

#include <cstddef>

#include "base/status.h"

namespace rlrt {

// Asks the kernel to back [data, data + size) with huge pages when it is
// first touched (only the 2 MiB-aligned part inside the range; nothing for
// small ranges). For large buffers allocated elsewhere (a 256 MiB string
// for a weight-update chunk): on this kind of virtual machine a 4 KiB page
// fault costs about 10 us, so touching 2.4 GB page by page takes seconds.
// Advice only: ignored where huge pages are off.
void AdviseHugePages(void* data, size_t size);

class PageArena {
 public:
  // Maps `bytes` (rounded up to whole pages); asks for transparent huge pages
  // when large, to cut TLB misses on weight reads.
  static StatusOr<PageArena> Create(size_t bytes);

  PageArena() = default;
  PageArena(PageArena&& other) noexcept;
  PageArena& operator=(PageArena&& other) noexcept;
  PageArena(const PageArena&) = delete;
  PageArena& operator=(const PageArena&) = delete;
  ~PageArena();

  std::byte* data() const { return data_; }
  // Gives the pages back to the kernel: the arena reads as zeros again and
  // holds no memory until touched (a scratch buffer used once per step need
  // not stay resident between steps).
  Status Release();
  // The same for the whole release granules inside [offset, offset +
  // length): a partial granule at either end keeps its memory and its
  // contents.
  Status Release(size_t offset, size_t length);
  // 2 MiB where the arena asked for transparent huge pages, else the OS
  // page: releasing part of a huge page splits it, and the range is then
  // faulted back 4 KiB at a time (about 10 us each on this kind of virtual
  // machine), which costs more than the memory is worth.
  size_t release_granule() const { return release_granule_; }
  size_t size() const { return size_; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  size_t release_granule_ = 4096;
};

}  // namespace rlrt

#endif  // RLRT_MODELS_PAGE_ARENA_H_
