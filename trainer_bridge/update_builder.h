// Building an UpdateParams from the trainer's leaves: the sending half of the
// weight-sync protocol (the receiving half is sampler/update_apply.h).
//
// In process, a message is built once per sync and the sampler applies
// straight from it: the payload is copied exactly twice (trainer leaves ->
// message, message -> sampler leaves). Building into the same message every
// step reuses its leaf buffers, so steady state allocates nothing. The
// serialized form is the same message, for senders in another process.
#ifndef RLRT_TRAINER_BRIDGE_UPDATE_BUILDER_H_
#define RLRT_TRAINER_BRIDGE_UPDATE_BUILDER_H_

#include <cstdint>
#include <string>

#include "base/status.h"
#include "models/leaf_finite.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"
#include "proto/update_params.pb.h"

namespace rlrt {

struct BuildOptions {
  // Compute the leaves' content hash and send it, so the receiver verifies
  // the payload end to end (hashed during the copy, from cache).
  bool include_content_hash = false;
  bool flush_cache = false;
  bool return_checksums = false;
  // Refuse (FailedPrecondition) weights holding a NaN or an infinity, so a
  // diverged trainer never reaches a sampler. Checked on each chunk as it is
  // copied; a refused message is left with no leaves.
  bool refuse_non_finite = true;
  // LoRA: the leaves are the adapter `lora_name` (UpdateParams.lora_name),
  // created from lora_config_json by a receiver that lacks it. Empty: the
  // leaves are the base weights.
  std::string lora_name{};
  std::string lora_config_json{};
};

// Why a trainer's weights are not sent (FailedPrecondition, naming the leaf
// and element of the first NaN or infinity).
Status RefuseNonFinite(const ParamLeaves& leaves, const NonFiniteElement& bad);

// Fills *out with every leaf of `leaves` and `version`. The copy is split
// across mesh's workers (mesh may be null).
Status BuildUpdateParams(const ParamLeaves& leaves, uint64_t version,
                         const BuildOptions& options, Mesh* mesh,
                         proto::UpdateParams* out);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_UPDATE_BUILDER_H_
