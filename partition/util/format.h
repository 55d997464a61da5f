// Small formatting and timing helpers shared by the layers' logs and
// replies.
#ifndef RLRT_PARTITION_UTIL_FORMAT_H_
#define RLRT_PARTITION_UTIL_FORMAT_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace rlrt {

// "0x" and 16 lower-case hex digits: how hashes and fingerprints are shown.
inline std::string HexU64(uint64_t value) {
  char buf[19];
  std::snprintf(buf, sizeof(buf), "0x%016llx",
                static_cast<unsigned long long>(value));
  return buf;
}

inline double MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace rlrt

#endif  // RLRT_PARTITION_UTIL_FORMAT_H_
