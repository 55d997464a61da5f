// Formatting helpers shared by the layers' logs and replies.
#ifndef RLRT_BASE_FORMAT_H_
#define RLRT_BASE_FORMAT_H_

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

}  // namespace rlrt

#endif  // RLRT_BASE_FORMAT_H_
