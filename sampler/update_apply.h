// Applying an UpdateParams message to a leaf list: the receiving half of the
// weight-sync protocol (the sending half is trainer_bridge/update_builder.h).
//
// The promise is atomicity: everything is validated first (version, leaf
// count, names and order, dtypes, shapes, byte lengths, structure
// fingerprint, and the payload's content hash when the sender gives one), and
// only then are the bytes copied into the existing buffers, split across the
// mesh's workers. A refused update leaves the target bit-for-bit unchanged and
// the error names the first offending leaf.
//
// The expected content hash is checked over the payload *before* the copy:
// the copy is exact, so the target's hash afterwards equals it by
// construction, and a mismatch never needs undoing.
//
// The caller owns synchronisation: nothing may read the target while an
// update is applied (the engine applies between decode steps).
#ifndef RLRT_SAMPLER_UPDATE_APPLY_H_
#define RLRT_SAMPLER_UPDATE_APPLY_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/status.h"
#include "models/leaf_checksum.h"
#include "models/leaf_finite.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"
#include "proto/update_params.pb.h"

namespace rlrt {

struct ApplyReport {
  uint64_t version = 0;  // The version in force after the apply.
  uint64_t bytes_copied = 0;
  int64_t elapsed_us = 0;
  // ContentHash of the leaves now held, computed chunk by chunk as each was
  // written (from cache), when the update carried a content hash: a sender
  // compares it with its own instead of reading the receiver's weights
  // again (for ApplyLeaves: when given an expected_content_hash). 0
  // otherwise.
  uint64_t content_hash = 0;
  // Set when the update asked for return_checksums.
  std::optional<LeafChecksums> before;
  std::optional<LeafChecksums> after;
};

struct ApplyOptions {
  // The caller has already read this very payload and found it sound, so
  // the apply skips its own pre-copy read (a third of an in-process sync,
  // and all of it inside the decode pause). Version and leaf structure are
  // still validated before anything is written.
  //  - ApplyUpdateParams: for a message built in this process by
  //    BuildUpdateParams with its content hash (WeightSync), which hashed
  //    and checked it for NaN and infinity as it wrote it. The hash of what
  //    was written is still compared with the message's after the copy; a
  //    mismatch means memory changed under the message (Internal, version
  //    not advanced). Ignored for a message without a content hash.
  //  - ApplyLeaves: the caller checked `source` for NaN and infinity (the
  //    update stream's commit does, with its hash, outside the pause; so
  //    does WeightSync, which hands over the trainer's leaves).
  bool payload_prechecked = false;
  // ApplyLeaves: the ContentHash the source must have. Unless prechecked,
  // the source is hashed before anything is written (a mismatch is
  // DataLoss, nothing changed); either way the copy hashes what it writes
  // and reports it as ApplyReport::content_hash, and a mismatch there means
  // the source changed under the copy (Internal, version not advanced).
  // Ignored by ApplyUpdateParams, whose message carries its own.
  std::optional<uint64_t> expected_content_hash{};
};

// Checks `update` against `target` without writing anything. mesh (may be
// null) spreads the payload hash check; `scan_payload` false skips it (see
// ApplyOptions). Allocates only to report an error.
Status ValidateUpdateParams(const proto::UpdateParams& update,
                            const ParamLeaves& target, Mesh* mesh,
                            bool scan_payload = true);

// Validates, then copies every leaf in place and sets target's version.
// Steady state allocates nothing.
StatusOr<ApplyReport> ApplyUpdateParams(const proto::UpdateParams& update,
                                        ParamLeaves& target, Mesh* mesh,
                                        ApplyOptions options = {});

// The largest weight version an update may carry: 2^63 - 1. Versions only
// grow, so a sender that jumped to 2^64 - 1 would leave no room for any
// later update (a reload without a version takes the version in force
// plus one); the bound also keeps versions exact in JSON's signed 64-bit
// integers. Larger versions are refused like any other invalid update.
inline constexpr uint64_t kMaxWeightVersion = (uint64_t{1} << 63) - 1;

// Which versions an update may carry. kNewerOrSame is for re-reading the
// weights of the version in force from disk (an operator repairing a server
// that was perturbed or restarted): versions still never go back.
enum class VersionRule { kNewer, kNewerOrSame };

// The same contract for weights already in memory (a checkpoint loaded from
// disk): `source` must have target's structure and `version` must satisfy
// `rule`; then every leaf is copied in place.
StatusOr<ApplyReport> ApplyLeaves(const ParamLeaves& source, uint64_t version,
                                  ParamLeaves& target, Mesh* mesh,
                                  VersionRule rule = VersionRule::kNewer,
                                  ApplyOptions options = {});

// Parses a serialized UpdateParams into *scratch (reuse one message across
// calls: its buffers are kept, so steady state allocates nothing). A
// malformed or truncated message, or one over protobuf's 2 GiB limit, is an
// InvalidArgument error. The engine parses with this, outside its step
// boundary, then applies the message there with ApplyUpdateParams.
Status ParseUpdateParams(std::string_view serialized,
                         proto::UpdateParams* scratch);

// ParseUpdateParams, then ApplyUpdateParams: the engine's path in one call
// (what the fuzz target drives).
StatusOr<ApplyReport> ApplySerializedUpdateParams(std::string_view serialized,
                                                  proto::UpdateParams* scratch,
                                                  ParamLeaves& target,
                                                  Mesh* mesh);

// The reply a receiver sends back: ok/error, the version in force (the
// target's, after the call), checksums and timings.
void FillUpdateParamsReply(const StatusOr<ApplyReport>& result,
                           const ParamLeaves& target,
                           proto::UpdateParamsReply* reply);

// Why a payload laid out like `layout` is refused for holding a NaN or an
// infinity (InvalidArgument, naming the leaf and element).
Status NonFiniteRefusal(const ParamLeaves& layout, const NonFiniteElement& bad);

// Conversions between the wire and in-memory dtype enums.
StatusOr<DType> DTypeFromProto(int proto_dtype);
proto::DType DTypeToProto(DType dtype);

}  // namespace rlrt

#endif  // RLRT_SAMPLER_UPDATE_APPLY_H_
