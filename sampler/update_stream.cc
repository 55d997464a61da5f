#include "sampler/update_stream.h"

#include <glog/logging.h>

#include <cstring>
#include <utility>

#include "base/format.h"
#include "models/hash.h"
#include "models/leaf_payload.h"
#include "models/leaf_scan.h"
#include "partition/parallel.h"

namespace rlrt {
namespace {

// Staging copies are split across workers in blocks of this many bytes.
constexpr size_t kCopyBlockBytes = size_t{1} << 20;

std::string StreamLabel(uint64_t version) {
  return "update stream for version " + std::to_string(version);
}

// Copies `data` to payload offset `offset` of `staging`, spread over the
// mesh. The range was checked against the payload's size.
Status CopyToPayload(ParamLeaves& staging, uint64_t offset,
                     std::string_view data, Mesh* mesh) {
  const int64_t blocks = static_cast<int64_t>(
      (data.size() + kCopyBlockBytes - 1) / kCopyBlockBytes);
  return ParallelForOrInline(mesh, blocks, [&](const Shard& shard) -> Status {
    const size_t begin = static_cast<size_t>(shard.begin) * kCopyBlockBytes;
    const size_t end =
        std::min(data.size(), static_cast<size_t>(shard.end) * kCopyBlockBytes);
    if (begin >= end) return OkStatus();
    return ForEachPayloadSpan(
        staging, offset + begin, end - begin,
        [&](size_t leaf, size_t leaf_offset, size_t range_offset, size_t size) {
          std::memcpy(staging.data(leaf) + leaf_offset,
                      data.data() + begin + range_offset, size);
        });
  });
}

}  // namespace

UpdateStreamReceiver::UpdateStreamReceiver(SamplerEngine* engine,
                                           Mesh* staging_mesh,
                                           UpdateStreamOptions options)
    : engine_(engine), staging_mesh_(staging_mesh), options_(options) {
  reaper_ = std::thread([this] { ReaperLoop(); });
}

UpdateStreamReceiver::~UpdateStreamReceiver() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    stream_.reset();
  }
  reaper_cv_.notify_all();
  reaper_.join();
}

void UpdateStreamReceiver::ReaperLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (!stream_) {
      reaper_cv_.wait(lock);
      continue;
    }
    const auto deadline = stream_->deadline;
    if (reaper_cv_.wait_until(lock, deadline) == std::cv_status::timeout &&
        stream_ && stream_->deadline <= std::chrono::steady_clock::now()) {
      const uint64_t version = stream_->begin.version();
      LOG(WARNING) << StreamLabel(version) << " abandoned: no message for "
                   << options_.idle_timeout.count() << " ms";
      (void)FailLocked(
          AbortedError(StreamLabel(version) + " abandoned: no message for " +
                       std::to_string(options_.idle_timeout.count()) +
                       " ms; its staging memory was freed"));
    }
  }
}

Status UpdateStreamReceiver::FailLocked(Status error) {
  stream_.reset();  // Frees the staging memory now.
  ++streams_failed_;
  last_error_ = error.ToString();
  return error;
}

Status UpdateStreamReceiver::Begin(const proto::UpdateStreamBegin& begin) {
  const std::string label = StreamLabel(begin.version());
  if (begin.version() > kMaxWeightVersion)
    return InvalidArgumentError(label + ": the version exceeds 2^63 - 1");
  const uint64_t in_force = engine_->Stats().weight_version;
  if (begin.version() <= in_force)
    return FailedPreconditionError(label +
                                   " is not newer than the version "
                                   "in force (" +
                                   std::to_string(in_force) + ")");
  const EngineBuffers buffers = engine_->buffers();
  if (begin.structure_fingerprint() != buffers.structure_fingerprint)
    return InvalidArgumentError(label + ": structure fingerprint " +
                                HexU64(begin.structure_fingerprint()) +
                                " != the receiver's " +
                                HexU64(buffers.structure_fingerprint));
  const std::vector<LeafSpec>& specs = engine_->weight_specs();
  uint64_t total = 0;
  for (const LeafSpec& spec : specs) total += spec.NumBytes();
  if (begin.total_bytes() != total)
    return InvalidArgumentError(label + ": " +
                                std::to_string(begin.total_bytes()) +
                                " payload bytes announced, the receiver "
                                "holds " +
                                std::to_string(total));
  if (begin.num_chunks() == 0 ||
      begin.num_chunks() > std::max<uint64_t>(total, 1))
    return InvalidArgumentError(
        label + ": " + std::to_string(begin.num_chunks()) +
        " chunks announced for " + std::to_string(total) + " bytes");

  std::lock_guard<std::mutex> lock(mu_);
  if (stream_) {
    const uint64_t active = stream_->begin.version();
    if (begin.version() < active)
      return FailedPreconditionError(
          label + " refused: the " + StreamLabel(active) +
          " is in progress (a newer one supersedes it, an older one never)");
    LOG(WARNING) << StreamLabel(active) << " superseded by " << label;
    (void)FailLocked(
        AbortedError(StreamLabel(active) + " superseded by " + label));
  }
  // Only address space until chunks arrive: the arena is mapped, not
  // touched, so allocating it under the lock costs nothing.
  StatusOr<ParamLeaves> staging = ParamLeaves::Allocate(specs);
  if (!staging.ok())
    return ResourceExhaustedError(
        label + ": cannot allocate staging: " + staging.status().ToString());
  stream_.emplace(Stream{
      .begin = begin,
      .staging = std::move(*staging),
      .deadline = std::chrono::steady_clock::now() + options_.idle_timeout});
  last_version_ = begin.version();
  reaper_cv_.notify_all();
  return OkStatus();
}

Status UpdateStreamReceiver::AddChunk(const proto::UpdateChunk& chunk) {
  std::lock_guard<std::mutex> lock(mu_);
  return AddChunkLocked(chunk);
}

Status UpdateStreamReceiver::AddSerializedChunk(std::string_view serialized) {
  std::lock_guard<std::mutex> lock(mu_);
  if (serialized.size() > static_cast<size_t>(INT32_MAX) ||
      !chunk_scratch_.ParseFromArray(serialized.data(),
                                     static_cast<int>(serialized.size())))
    return InvalidArgumentError("malformed or truncated UpdateChunk (" +
                                std::to_string(serialized.size()) + " bytes)");
  return AddChunkLocked(chunk_scratch_);
}

Status UpdateStreamReceiver::AddChunkLocked(const proto::UpdateChunk& chunk) {
  if (!stream_)
    return FailedPreconditionError(
        "chunk " + std::to_string(chunk.index()) + " of version " +
        std::to_string(chunk.version()) + ": no update stream is in progress");
  Stream& s = *stream_;
  const std::string label = StreamLabel(s.begin.version());
  if (chunk.version() != s.begin.version())
    return FailedPreconditionError(
        "chunk of version " + std::to_string(chunk.version()) +
        " refused: the " + label + " is in progress");
  const std::string which = "chunk " + std::to_string(chunk.index());
  if (chunk.index() != s.chunks_received)
    return FailLocked(InvalidArgumentError(
        label + " broken off: " + which + " arrived, chunk " +
        std::to_string(s.chunks_received) +
        " expected (missing, duplicated or reordered)"));
  if (chunk.index() >= s.begin.num_chunks())
    return FailLocked(InvalidArgumentError(
        label + " broken off: " + which + " is beyond the " +
        std::to_string(s.begin.num_chunks()) + " announced"));
  if (chunk.offset() != s.bytes_received)
    return FailLocked(InvalidArgumentError(
        label + " broken off: " + which + " starts at byte " +
        std::to_string(chunk.offset()) + ", " +
        std::to_string(s.bytes_received) + " expected"));
  const std::string& data = chunk.data();
  if ((data.empty() && s.begin.total_bytes() != 0) ||
      data.size() > s.begin.total_bytes() - s.bytes_received)
    return FailLocked(InvalidArgumentError(
        label + " broken off: " + which + " holds " +
        std::to_string(data.size()) + " bytes, " +
        std::to_string(s.begin.total_bytes() - s.bytes_received) +
        " remain to be sent"));
  if (HashBytes(data.data(), data.size(), 0) != chunk.data_hash())
    return FailLocked(DataLossError(label + " broken off: " + which +
                                    " does not match its hash (corrupted)"));
  Status copied = CopyToPayload(s.staging, chunk.offset(), data, staging_mesh_);
  if (!copied.ok()) return FailLocked(copied.WithContext(label));
  s.bytes_received += data.size();
  ++s.chunks_received;
  s.deadline = std::chrono::steady_clock::now() + options_.idle_timeout;
  return OkStatus();
}

StatusOr<ApplyReport> UpdateStreamReceiver::Commit(
    const proto::UpdateStreamCommit& commit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!stream_)
    return FailedPreconditionError("commit of version " +
                                   std::to_string(commit.version()) +
                                   ": no update stream is in progress");
  Stream& s = *stream_;
  const std::string label = StreamLabel(s.begin.version());
  if (commit.version() != s.begin.version())
    return FailedPreconditionError(
        "commit of version " + std::to_string(commit.version()) +
        " refused: the " + label + " is in progress");
  if (commit.num_chunks() != s.begin.num_chunks() ||
      s.chunks_received != s.begin.num_chunks() ||
      s.bytes_received != s.begin.total_bytes())
    return FailLocked(InvalidArgumentError(
        label + " refused at commit: " + std::to_string(s.chunks_received) +
        " of " + std::to_string(s.begin.num_chunks()) + " chunks (" +
        std::to_string(s.bytes_received) + " of " +
        std::to_string(s.begin.total_bytes()) +
        " bytes) arrived; the commit counts " +
        std::to_string(commit.num_chunks())));
  // One read of the staged payload, here rather than inside the engine's
  // decode pause: its hash, and NaN or infinity (a hash mismatch is
  // reported first: NaN in a corrupted payload says nothing of the sender).
  StatusOr<LeafScan> scan = ScanLeaves(
      s.staging,
      [&](size_t i) -> const std::byte* { return s.staging.data(i); },
      {.hash = true, .find_non_finite = true}, staging_mesh_);
  if (!scan.ok()) return FailLocked(scan.status().WithContext(label));
  if (scan->content_hash != s.begin.expected_content_hash())
    return FailLocked(DataLossError(
        label + " refused at commit: the staged payload hashes to " +
        HexU64(scan->content_hash) + ", the begin expected " +
        HexU64(s.begin.expected_content_hash())));
  if (scan->non_finite)
    return FailLocked(
        NonFiniteRefusal(s.staging, *scan->non_finite).WithContext(label));
  StatusOr<ApplyReport> applied = engine_->UpdateFromLeaves(
      s.staging, s.begin.version(), s.begin.flush_cache(), VersionRule::kNewer,
      {.payload_prechecked = true});
  if (!applied.ok()) return FailLocked(applied.status().WithContext(label));
  applied->content_hash = scan->content_hash;
  stream_.reset();
  ++streams_committed_;
  return applied;
}

Status UpdateStreamReceiver::Abort(uint64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!stream_ || stream_->begin.version() != version)
    return NotFoundError("no " + StreamLabel(version) + " is in progress");
  // The stream's record says why it ended; the sender's call succeeded.
  (void)FailLocked(
      AbortedError(StreamLabel(version) + " aborted by its sender"));
  return OkStatus();
}

UpdateStreamStatus UpdateStreamReceiver::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  UpdateStreamStatus out;
  out.version = last_version_;
  out.streams_committed = streams_committed_;
  out.streams_failed = streams_failed_;
  out.last_error = last_error_;
  if (stream_) {
    out.active = true;
    out.bytes_received = stream_->bytes_received;
    out.total_bytes = stream_->begin.total_bytes();
    out.chunks_received = stream_->chunks_received;
    out.num_chunks = stream_->begin.num_chunks();
  }
  return out;
}

}  // namespace rlrt
