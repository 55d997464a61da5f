// The in-process weight sync: the trainer's leaves -> the sampler's leaf
// list, in place, then a check that both sides hold the same bytes.
//
// Base weights go leaf to leaf, with no message between: the trainer's mesh
// hashes its leaves and looks for NaN and infinity (one read, outside the
// sampler's pause), then the engine copies them straight from the trainer's
// buffers into its own at a step boundary, hashing what it writes. The
// trainer's thread is blocked in Push for all of it, so its leaves cannot
// change under the copy. Staging the payload in an UpdateParams instead
// would hold a third copy of the model (1.2 GB for Qwen3-0.6B in BF16) and
// copy it once more; the message is the wire format for other processes
// (trainer_bridge/remote/). Adapters, which are small and may have to be
// created on the engine, still travel as an UpdateParams (one message kept
// and rebuilt every sync, so steady state reuses its buffers).
#ifndef RLRT_TRAINER_BRIDGE_WEIGHT_SYNC_H_
#define RLRT_TRAINER_BRIDGE_WEIGHT_SYNC_H_

#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "base/timing.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"
#include "proto/update_params.pb.h"
#include "sampler/engine.h"
#include "trainer_bridge/update_builder.h"

namespace rlrt {

struct SyncReport {
  uint64_t version = 0;
  uint64_t bytes = 0;
  uint64_t content_hash = 0;
  // Trainer side: hash and check the weights (adapters: build the message).
  double build_ms = 0;
  double apply_ms = 0;  // Until the engine acknowledged the update.
  double stall_ms = 0;  // Decoding paused for the apply.
  // Reading the receiver's weights back to check them: remote servers only.
  // In process it is 0: the sampler hashes its leaves as it writes them.
  double verify_ms = 0;
  double total_ms = 0;
};

class WeightSync {
 public:
  // `engine` must outlive this; `trainer_mesh` (may be null) spreads the
  // trainer's scan (and an adapter's build) over its workers. `verify`
  // compares the sampler's hash of a pushed adapter with the trainer's;
  // base pushes are always compared (the engine hashes as it copies).
  WeightSync(SamplerEngine* engine, Mesh* trainer_mesh, bool verify = true,
             bool flush_cache = true);

  // Sends `weights` as `version` (which must be newer than the engine's).
  // A refused update leaves the engine's weights and version unchanged; the
  // error says why. Weights holding a NaN or an infinity are refused before
  // the engine sees them (FailedPrecondition). If what the engine wrote
  // does not hash to the trainer's hash (memory changed under the copy),
  // the version is not advanced and the error is Internal.
  StatusOr<SyncReport> Push(const ParamLeaves& weights, uint64_t version);
  // The same for a LoRA adapter: only its leaves travel, as adapter `name`
  // (created on the engine by the first push), and `version` must be newer
  // than that adapter's version there. The base is not touched.
  StatusOr<SyncReport> PushAdapter(const LoraAdapter& adapter,
                                   std::string_view name, uint64_t version);

 private:
  SamplerEngine* const engine_;
  Mesh* const trainer_mesh_;
  const bool verify_;
  const bool flush_cache_;
  StatusOr<SyncReport> SendAdapter(const ParamLeaves& leaves, uint64_t version,
                                   BuildOptions build);
  // Why a push of `version` was refused, naming what the engine keeps.
  Status Refused(const Status& why, const std::string& lora_name,
                 uint64_t version) const;
  // The apply's part of a report: its time, version, bytes and stall.
  void RecordApplied(const ApplyReport& applied,
                     SteadyClock::time_point apply_start,
                     SyncReport& report) const;

  proto::UpdateParams message_;  // Adapters only.
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_WEIGHT_SYNC_H_
