// A weight update serialized for the wire, as the client pool sends it to
// rollout servers: one UpdateParams message (POST /admin/update_params), or
// a stream of chunks under one version for updates of any size (POST
// /admin/update_stream/begin, each chunk in order, then commit; see
// sampler/update_stream.h).
#ifndef RLRT_TRAINER_BRIDGE_WIRE_UPDATE_H_
#define RLRT_TRAINER_BRIDGE_WIRE_UPDATE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rlrt {

// Updates whose payload is larger go as a stream of chunks of this size:
// well under protobuf's 2 GiB message limit, and small enough that a server
// holds one chunk body at a time without strain.
inline constexpr size_t kDefaultUpdateChunkBytes = size_t{256} << 20;

struct WireUpdate {
  uint64_t version = 0;
  uint64_t content_hash = 0;  // Of the weights it carries.
  // A serialized UpdateParams, when not streamed.
  std::string message;
  // A stream: serialized UpdateStreamBegin, UpdateChunks, UpdateStreamCommit.
  std::string begin;
  std::vector<std::string> chunks;
  std::string commit;

  bool streamed() const { return !begin.empty(); }
  // Bytes sent to each server.
  size_t bytes() const {
    size_t n = message.size() + begin.size() + commit.size();
    for (const std::string& c : chunks) n += c.size();
    return n;
  }
  static WireUpdate Single(uint64_t version, std::string serialized) {
    WireUpdate u;
    u.version = version;
    u.message = std::move(serialized);
    return u;
  }
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_WIRE_UPDATE_H_
