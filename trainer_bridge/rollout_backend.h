// Where the RL loop's rollouts come from: what the loop needs of a sampler,
// so the same loop drives the in-process engine (LocalRollouts) or rollout
// servers over HTTP (RemoteRollouts, trainer_bridge/remote/).
#ifndef RLRT_TRAINER_BRIDGE_ROLLOUT_BACKEND_H_
#define RLRT_TRAINER_BRIDGE_ROLLOUT_BACKEND_H_

#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "models/param_leaves.h"
#include "sampler/engine.h"
#include "sampler/request.h"
#include "sampler/request_handle.h"
#include "trainer_bridge/weight_sync.h"

namespace rlrt {

class RolloutBackend {
 public:
  virtual ~RolloutBackend() = default;
  // Queues one request (a whole group when n > 1); returns at once.
  virtual StatusOr<RequestHandle> Submit(GenerateRequest request) = 0;
  // Best effort: the request ends early if the backend can stop it.
  virtual void Abort(const RequestHandle& handle) = 0;
  // Sends the trainer's weights as `version` to every sampler and verifies
  // each now holds exactly them; on error the samplers that refused keep
  // their previous weights.
  virtual StatusOr<SyncReport> PushWeights(const ParamLeaves& weights,
                                           uint64_t version) = 0;
  // The weight version in force (the oldest, over several samplers).
  virtual StatusOr<uint64_t> WeightVersion() = 0;
  // The newest version any sampler holds (a push must be newer).
  virtual StatusOr<uint64_t> NewestWeightVersion() { return WeightVersion(); }
  // Ids below this can be sampled.
  virtual int64_t vocab_size() const = 0;

  // LoRA runs: sends `adapter` as the samplers' adapter `name` (created by
  // the first push; the base is not touched) and verifies it like
  // PushWeights.
  virtual StatusOr<SyncReport> PushAdapter(const LoraAdapter& /*adapter*/,
                                           std::string_view /*name*/,
                                           uint64_t /*version*/) {
    return UnimplementedError(
        "this rollout backend does not sync LoRA "
        "adapters");
  }
  // The version of adapter `name` new requests run with (the oldest over
  // several samplers); 0 when no sampler holds it yet.
  virtual StatusOr<uint64_t> AdapterVersion(std::string_view /*name*/) {
    return UnimplementedError(
        "this rollout backend does not serve LoRA "
        "adapters");
  }
};

// The in-process engine, with WeightSync for the pushes.
class LocalRollouts : public RolloutBackend {
 public:
  // `engine` must outlive this; `trainer_mesh` (may be null) builds the
  // updates.
  LocalRollouts(SamplerEngine* engine, Mesh* trainer_mesh, bool verify = true,
                bool flush_cache = true)
      : engine_(engine), sync_(engine, trainer_mesh, verify, flush_cache) {}

  StatusOr<RequestHandle> Submit(GenerateRequest request) override {
    return engine_->Submit(std::move(request));
  }
  void Abort(const RequestHandle& handle) override {
    engine_->Abort(handle.id());
  }
  StatusOr<SyncReport> PushWeights(const ParamLeaves& weights,
                                   uint64_t version) override {
    return sync_.Push(weights, version);
  }
  StatusOr<uint64_t> WeightVersion() override {
    return engine_->Stats().weight_version;
  }
  int64_t vocab_size() const override { return engine_->vocab_size(); }
  StatusOr<SyncReport> PushAdapter(const LoraAdapter& adapter,
                                   std::string_view name,
                                   uint64_t version) override {
    return sync_.PushAdapter(adapter, name, version);
  }
  StatusOr<uint64_t> AdapterVersion(std::string_view name) override {
    StatusOr<uint64_t> v = engine_->AdapterVersion(name);
    if (v.status().code() == StatusCode::kNotFound) return uint64_t{0};
    return v;
  }

 private:
  SamplerEngine* const engine_;
  WeightSync sync_;
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_ROLLOUT_BACKEND_H_
