#include "trainer_bridge/reward_shaping.h"

#include <algorithm>

namespace rlrt {

double OverlongPenalty(int64_t length, int64_t max_length, int64_t buffer) {
  if (buffer <= 0) return 0;
  const int64_t free_length = max_length - buffer;
  if (length <= free_length) return 0;
  return std::max(-1.0, double(free_length - length) / double(buffer));
}

}  // namespace rlrt
