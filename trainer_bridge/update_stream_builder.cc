#include "trainer_bridge/update_stream_builder.h"

#include <cstring>
#include <limits>
#include <utility>

#include "models/hash.h"
#include "models/leaf_payload.h"
#include "models/leaf_scan.h"
#include "models/page_arena.h"
#include "trainer_bridge/update_builder.h"

namespace rlrt {

StatusOr<UpdateStreamWriter> UpdateStreamWriter::Start(
    const ParamLeaves& leaves, uint64_t version,
    const StreamBuildOptions& options, Mesh* mesh) {
  if (options.chunk_bytes == 0)
    return InvalidArgumentError("the update chunk size must be positive");
  const uint64_t total = leaves.total_bytes();
  const uint64_t chunks = std::max<uint64_t>(
      1, (total + options.chunk_bytes - 1) / options.chunk_bytes);
  if (chunks > std::numeric_limits<uint32_t>::max())
    return InvalidArgumentError("an update of " + std::to_string(total) +
                                " bytes in chunks of " +
                                std::to_string(options.chunk_bytes) +
                                " bytes needs more than 2^32 - "
                                "1 chunks");
  ASSIGN_OR_RETURN(
      const LeafScan scan,
      ScanLeaves(
          leaves, [&](size_t i) { return leaves.data(i); },
          {.hash = true, .find_non_finite = options.refuse_non_finite}, mesh));
  if (scan.non_finite) return RefuseNonFinite(leaves, *scan.non_finite);
  UpdateStreamWriter writer(leaves, options.chunk_bytes);
  writer.begin_.set_version(version);
  writer.begin_.set_structure_fingerprint(leaves.fingerprint());
  writer.begin_.set_total_bytes(total);
  writer.begin_.set_num_chunks(static_cast<uint32_t>(chunks));
  writer.begin_.set_expected_content_hash(scan.content_hash);
  writer.begin_.set_flush_cache(options.flush_cache);
  return writer;
}

Status UpdateStreamWriter::FillChunk(uint32_t index,
                                     proto::UpdateChunk* out) const {
  if (index >= num_chunks())
    return OutOfRangeError("chunk " + std::to_string(index) + " of " +
                           std::to_string(num_chunks()));
  const uint64_t offset = uint64_t{index} * chunk_bytes_;
  const uint64_t size = std::min<uint64_t>(
      chunk_bytes_, leaves_->total_bytes() -
                        std::min<uint64_t>(offset, leaves_->total_bytes()));
  out->set_version(begin_.version());
  out->set_index(index);
  out->set_offset(offset);
  std::string* data = out->mutable_data();
  if (data->capacity() < size) {
    data->reserve(size);
    AdviseHugePages(data->data(), data->capacity());
  }
  data->resize(size);  // Keeps its capacity from the previous chunk.
  RETURN_IF_ERROR(ForEachPayloadSpan(
      *leaves_, offset, size,
      [&](size_t leaf, size_t leaf_offset, size_t range_offset, size_t n) {
        std::memcpy(data->data() + range_offset,
                    leaves_->data(leaf) + leaf_offset, n);
      }));
  out->set_data_hash(HashBytes(data->data(), data->size(), 0));
  return OkStatus();
}

proto::UpdateStreamCommit UpdateStreamWriter::commit() const {
  proto::UpdateStreamCommit commit;
  commit.set_version(begin_.version());
  commit.set_num_chunks(begin_.num_chunks());
  return commit;
}

StatusOr<WireUpdate> SerializeUpdateStream(const ParamLeaves& leaves,
                                           uint64_t version,
                                           const StreamBuildOptions& options,
                                           Mesh* mesh) {
  ASSIGN_OR_RETURN(const UpdateStreamWriter writer,
                   UpdateStreamWriter::Start(leaves, version, options, mesh));
  WireUpdate out;
  out.version = version;
  out.content_hash = writer.begin().expected_content_hash();
  out.begin = writer.begin().SerializeAsString();
  out.commit = writer.commit().SerializeAsString();
  out.chunks.resize(writer.num_chunks());
  proto::UpdateChunk chunk;
  for (uint32_t i = 0; i < writer.num_chunks(); ++i) {
    RETURN_IF_ERROR(writer.FillChunk(i, &chunk));
    out.chunks[i].reserve(chunk.ByteSizeLong());
    AdviseHugePages(out.chunks[i].data(), out.chunks[i].capacity());
    if (!chunk.SerializeToString(&out.chunks[i]))
      return InternalError("cannot serialize update chunk " +
                           std::to_string(i));
  }
  return out;
}

StatusOr<ApplyReport> SendUpdateStream(const ParamLeaves& leaves,
                                       uint64_t version,
                                       const StreamBuildOptions& options,
                                       Mesh* mesh,
                                       UpdateStreamReceiver& receiver) {
  ASSIGN_OR_RETURN(const UpdateStreamWriter writer,
                   UpdateStreamWriter::Start(leaves, version, options, mesh));
  RETURN_IF_ERROR(receiver.Begin(writer.begin()));
  proto::UpdateChunk chunk;
  for (uint32_t i = 0; i < writer.num_chunks(); ++i) {
    Status built = writer.FillChunk(i, &chunk);
    if (!built.ok()) {
      (void)receiver.Abort(version);
      return built;
    }
    // A refused chunk has already ended the receiver's stream.
    RETURN_IF_ERROR(receiver.AddChunk(chunk));
  }
  return receiver.Commit(writer.commit());
}

}  // namespace rlrt
