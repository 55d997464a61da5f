#include "models/page_arena.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace rlrt {
namespace {

// Which bytes of [begin, end) read as zero after a release over them.
void ExpectReleasedExactly(const PageArena& arena, uintptr_t begin,
                           uintptr_t end) {
  const uintptr_t base = reinterpret_cast<uintptr_t>(arena.data());
  for (size_t at = 0; at < arena.size(); at += 512) {
    const bool released = base + at >= begin && base + at < end;
    ASSERT_EQ(arena.data()[at], released ? std::byte{0} : std::byte{7})
        << "offset " << at;
  }
}

TEST(PageArenaTest, SmallArenasReleaseWholeOsPagesInsideTheRange) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  auto arena = PageArena::Create(16 * page);
  ASSERT_TRUE(arena.ok()) << arena.status();
  EXPECT_EQ(arena->release_granule(), page);
  std::memset(arena->data(), 7, arena->size());
  // From the middle of page 1 to the middle of page 5: pages 2..4 go.
  ASSERT_TRUE(arena->Release(page + page / 2, 4 * page).ok());
  const uintptr_t base = reinterpret_cast<uintptr_t>(arena->data());
  ExpectReleasedExactly(*arena, base + 2 * page, base + 5 * page);
  EXPECT_EQ(arena->Release(page, 16 * page).code(), StatusCode::kOutOfRange);
}

TEST(PageArenaTest, HugePageArenasReleaseWhole2MiBGranulesOnly) {
  constexpr size_t kMiB = size_t{1} << 20;
  auto arena = PageArena::Create(64 * kMiB);
  ASSERT_TRUE(arena.ok()) << arena.status();
  const size_t g = arena->release_granule();
  EXPECT_EQ(g, 2 * kMiB);
  std::memset(arena->data(), 7, arena->size());
  const uintptr_t base = reinterpret_cast<uintptr_t>(arena->data());
  // 5 MiB from 1 MiB in: the aligned granules wholly inside go, and no
  // partial one is split.
  const uintptr_t first = base + kMiB, last = first + 5 * kMiB;
  ASSERT_TRUE(arena->Release(kMiB, 5 * kMiB).ok());
  ExpectReleasedExactly(*arena, (first + g - 1) / g * g, last / g * g);
}

}  // namespace
}  // namespace rlrt
