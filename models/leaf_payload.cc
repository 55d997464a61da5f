#include "models/leaf_payload.h"

#include <algorithm>
#include <string>

namespace rlrt {

Status ForEachPayloadSpan(const ParamLeaves& layout, size_t begin, size_t size,
                          PayloadSpanFn fn) {
  const size_t total = layout.total_bytes();
  if (begin > total || size > total - begin) {
    return OutOfRangeError("payload range [" + std::to_string(begin) + ", " +
                           std::to_string(begin) + " + " +
                           std::to_string(size) + ") passes the end of the " +
                           std::to_string(total) + "-byte payload");
  }
  const std::vector<size_t>& offsets = layout.byte_offsets();
  // The leaf holding `begin`: the last leaf starting at or before it.
  size_t leaf = static_cast<size_t>(
      std::upper_bound(offsets.begin(), offsets.end() - 1, begin) -
      offsets.begin() - 1);
  size_t done = 0;
  while (done < size) {
    const size_t at = begin + done;
    // Empty leaves hold no payload byte; step over them.
    while (offsets[leaf + 1] <= at) ++leaf;
    const size_t leaf_offset = at - offsets[leaf];
    const size_t n = std::min(size - done, offsets[leaf + 1] - at);
    fn(leaf, leaf_offset, done, n);
    done += n;
  }
  return OkStatus();
}

}  // namespace rlrt
