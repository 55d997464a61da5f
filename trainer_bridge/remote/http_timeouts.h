// Timeouts for cpp-httplib clients, given in (fractional) seconds.
#ifndef RLRT_TRAINER_BRIDGE_REMOTE_HTTP_TIMEOUTS_H_
#define RLRT_TRAINER_BRIDGE_REMOTE_HTTP_TIMEOUTS_H_

#include <httplib.h>

#include <cmath>
#include <ctime>
#include <utility>

namespace rlrt {

// Whole seconds and the microseconds left over, as httplib takes them.
inline std::pair<time_t, time_t> SecondsAndMicros(double seconds) {
  const double whole = std::floor(seconds);
  return {static_cast<time_t>(whole),
          static_cast<time_t>((seconds - whole) * 1e6)};
}

inline void SetHttpTimeouts(httplib::Client& client, double connect_seconds,
                            double read_seconds, double write_seconds) {
  const auto [connect_s, connect_us] = SecondsAndMicros(connect_seconds);
  const auto [read_s, read_us] = SecondsAndMicros(read_seconds);
  const auto [write_s, write_us] = SecondsAndMicros(write_seconds);
  client.set_connection_timeout(connect_s, connect_us);
  client.set_read_timeout(read_s, read_us);
  client.set_write_timeout(write_s, write_us);
}

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_REMOTE_HTTP_TIMEOUTS_H_
