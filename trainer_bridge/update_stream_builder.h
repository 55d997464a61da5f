// Sending a weight update of any size as a stream of chunks under one
// version: the sending half of sampler/update_stream.h.
//
// The payload (every leaf's bytes in order, models/leaf_payload.h) is cut
// into chunks of at most `chunk_bytes`; the begin carries the version, the
// structure fingerprint, the total size, the chunk count and the content
// hash of the whole payload (the hash a receiver reports for its weights),
// so a receiver can check what it staged before applying it.
#ifndef RLRT_TRAINER_BRIDGE_UPDATE_STREAM_BUILDER_H_
#define RLRT_TRAINER_BRIDGE_UPDATE_STREAM_BUILDER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"
#include "proto/update_params.pb.h"
#include "sampler/update_stream.h"
#include "trainer_bridge/wire_update.h"

namespace rlrt {

struct StreamBuildOptions {
  size_t chunk_bytes = kDefaultUpdateChunkBytes;
  bool flush_cache = true;
  // Refuse (FailedPrecondition) weights holding a NaN or an infinity.
  bool refuse_non_finite = true;
};

// The messages of one stream over `leaves`, which must not change while
// the stream is built.
class UpdateStreamWriter {
 public:
  // Reads `leaves` once (content hash and the non-finite check, split
  // across mesh's workers; mesh may be null). InvalidArgument for a zero
  // chunk size or more than 2^32 - 1 chunks.
  static StatusOr<UpdateStreamWriter> Start(const ParamLeaves& leaves,
                                            uint64_t version,
                                            const StreamBuildOptions& options,
                                            Mesh* mesh);

  const proto::UpdateStreamBegin& begin() const { return begin_; }
  uint32_t num_chunks() const { return begin_.num_chunks(); }
  // Fills *out with chunk `index` (< num_chunks()), reusing its buffer.
  Status FillChunk(uint32_t index, proto::UpdateChunk* out) const;
  proto::UpdateStreamCommit commit() const;

 private:
  UpdateStreamWriter(const ParamLeaves& leaves, size_t chunk_bytes)
      : leaves_(&leaves), chunk_bytes_(chunk_bytes) {}

  const ParamLeaves* leaves_;
  size_t chunk_bytes_;
  proto::UpdateStreamBegin begin_;
};

// A whole stream serialized for the wire (begin, chunks, commit).
StatusOr<WireUpdate> SerializeUpdateStream(const ParamLeaves& leaves,
                                           uint64_t version,
                                           const StreamBuildOptions& options,
                                           Mesh* mesh);

// In process: builds each chunk into one reused message and hands it to
// `receiver` (so the sender holds one chunk at a time), then commits. A
// refusal at any point aborts the receiver's stream and comes back here.
StatusOr<ApplyReport> SendUpdateStream(const ParamLeaves& leaves,
                                       uint64_t version,
                                       const StreamBuildOptions& options,
                                       Mesh* mesh,
                                       UpdateStreamReceiver& receiver);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_UPDATE_STREAM_BUILDER_H_
