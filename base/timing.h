// Elapsed-time helpers on the monotonic clock: the one way the layers time
// steps, stalls and requests for their logs, metrics and replies.
#ifndef RLRT_BASE_TIMING_H_
#define RLRT_BASE_TIMING_H_

#include <chrono>

namespace rlrt {

using SteadyClock = std::chrono::steady_clock;

inline double SecondsBetween(SteadyClock::time_point start,
                             SteadyClock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

inline double SecondsSince(SteadyClock::time_point start) {
  return SecondsBetween(start, SteadyClock::now());
}

inline double MillisecondsSince(SteadyClock::time_point start) {
  return SecondsSince(start) * 1e3;
}

}  // namespace rlrt

#endif  // RLRT_BASE_TIMING_H_
