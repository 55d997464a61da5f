// Receiving a weight update of any size as a stream of chunks under one
// version (proto/update_params.proto: UpdateStreamBegin, UpdateChunk,
// UpdateStreamCommit), for updates larger than one protobuf message (2 GiB)
// or than a sender's chunk size.
//
// Chunks are staged in a leaf list of the engine's structure, allocated at
// begin and freed when the stream ends, whatever the outcome: nothing is
// visible to generation before commit. Commit checks that every chunk
// arrived, hashes the staged payload against the begin's expected content
// hash, and hands it to the engine as one update (validated and applied
// whole at a step boundary, SamplerEngine::UpdateFromLeaves). A missing,
// duplicated, reordered or corrupted chunk ends the stream at once; so
// does a begin for a newer version (it supersedes the stream in progress)
// and a stream left without a message for `idle_timeout` (a background
// thread frees its staging memory then). In every failure the old weights
// keep serving.
//
// One stream at a time per receiver. Thread-safe: any thread may call any
// method; calls are serialized.
#ifndef RLRT_SAMPLER_UPDATE_STREAM_H_
#define RLRT_SAMPLER_UPDATE_STREAM_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "base/status.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"
#include "proto/update_params.pb.h"
#include "sampler/engine.h"

namespace rlrt {

struct UpdateStreamOptions {
  // A stream with no begin, chunk or commit for this long is abandoned.
  std::chrono::milliseconds idle_timeout{60000};
};

struct UpdateStreamStatus {
  bool active = false;   // A stream is staging.
  uint64_t version = 0;  // Of the active stream, or the last one.
  // The active stream's progress; zero when none is open.
  uint64_t bytes_received = 0;
  uint64_t total_bytes = 0;
  uint32_t chunks_received = 0;
  uint32_t num_chunks = 0;
  int64_t streams_committed = 0;  // Since creation.
  int64_t streams_failed = 0;     // Refused, broken off, abandoned.
  std::string last_error;         // Why the last failed stream failed.
};

class UpdateStreamReceiver {
 public:
  // `engine` must outlive this; `staging_mesh` (may be null) spreads the
  // staging copies and the commit's hash over its workers.
  UpdateStreamReceiver(SamplerEngine* engine, Mesh* staging_mesh,
                       UpdateStreamOptions options = {});
  ~UpdateStreamReceiver();  // Drops a stream in progress.
  UpdateStreamReceiver(const UpdateStreamReceiver&) = delete;
  UpdateStreamReceiver& operator=(const UpdateStreamReceiver&) = delete;

  // Starts a stream after checking it against the engine (version newer
  // than the one in force, fingerprint, total bytes, chunk count) and
  // allocates its staging. A begin for a version at least the active
  // stream's supersedes that stream (a sender retrying, or a newer version
  // after an abandoned one); an older one is refused (FailedPrecondition)
  // and the active stream goes on.
  Status Begin(const proto::UpdateStreamBegin& begin);
  // Copies a chunk into staging. A chunk of another version than the
  // active stream's is refused alone (FailedPrecondition). Within the
  // stream, a chunk out of order (missing, duplicated, reordered), out of
  // range, or whose data does not match its hash ends the stream.
  Status AddChunk(const proto::UpdateChunk& chunk);
  // Parses into one reused message first (steady state allocates nothing
  // here); a malformed chunk is refused alone.
  Status AddSerializedChunk(std::string_view serialized);
  // Ends the stream: every chunk must have arrived and the staged payload
  // must hash to the begin's expected hash; then the engine applies it.
  // The staging memory is freed either way.
  StatusOr<ApplyReport> Commit(const proto::UpdateStreamCommit& commit);
  // Drops the active stream of `version` (a sender giving up); NotFound
  // when there is none.
  Status Abort(uint64_t version);

  UpdateStreamStatus status() const;

 private:
  struct Stream {
    proto::UpdateStreamBegin begin;
    ParamLeaves staging;
    uint64_t bytes_received = 0;
    uint32_t chunks_received = 0;
    std::chrono::steady_clock::time_point deadline;
  };

  // Under mu_: ends the active stream as failed with `error`, frees its
  // staging, and returns `error`.
  Status FailLocked(Status error);
  Status AddChunkLocked(const proto::UpdateChunk& chunk);
  void ReaperLoop();

  SamplerEngine* const engine_;
  Mesh* const staging_mesh_;
  const UpdateStreamOptions options_;

  mutable std::mutex mu_;
  std::condition_variable reaper_cv_;
  std::optional<Stream> stream_;      // Guarded by mu_.
  uint64_t last_version_ = 0;         // Guarded by mu_.
  int64_t streams_committed_ = 0;     // Guarded by mu_.
  int64_t streams_failed_ = 0;        // Guarded by mu_.
  std::string last_error_;            // Guarded by mu_.
  proto::UpdateChunk chunk_scratch_;  // Guarded by mu_.
  bool stopping_ = false;             // Guarded by mu_.
  std::thread reaper_;                // Frees abandoned streams; joined in ~.
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_UPDATE_STREAM_H_
