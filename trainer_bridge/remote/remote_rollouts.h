// Remote rollouts for the RL loop: generation through a RolloutClient pool
// and weight pushes broadcast to every server, each verified by its weights
// checksum: one serialized UpdateParams (/admin/update_params), or a stream
// of chunks (/admin/update_stream/...) when the weights are larger than the
// pool's update_chunk_bytes.
#ifndef RLRT_TRAINER_BRIDGE_REMOTE_REMOTE_ROLLOUTS_H_
#define RLRT_TRAINER_BRIDGE_REMOTE_REMOTE_ROLLOUTS_H_

#include <memory>
#include <string>

#include "proto/update_params.pb.h"
#include "trainer_bridge/remote/rollout_client.h"
#include "trainer_bridge/rollout_backend.h"

namespace rlrt {

class RemoteRollouts : public RolloutBackend {
 public:
  // Connects to every server and reads its vocabulary (GET /v1/models);
  // the servers must agree. `trainer_mesh` (may be null) builds updates.
  static StatusOr<std::unique_ptr<RemoteRollouts>> Create(
      const RolloutClientOptions& options, Mesh* trainer_mesh);

  StatusOr<RequestHandle> Submit(GenerateRequest request) override;
  // The servers have no abort endpoint; the request runs to its end.
  void Abort(const RequestHandle&) override {}
  // Refused by any server that answered: an error naming each server and
  // its reason (the run stops, as the loop does on any sync error). Servers
  // that cannot be reached are skipped and marked behind: the client's
  // catch-up thread sends them this update when they answer again, and
  // until then they take no generation. Unavailable when no server took it.
  // Each server that took it must then report the trainer's content hash.
  StatusOr<SyncReport> PushWeights(const ParamLeaves& weights,
                                   uint64_t version) override;
  // The adapter alone, as one UpdateParams with lora_name to every server;
  // each must apply it (200) and report the trainer's content hash. Unlike
  // PushWeights there is no catch-up yet: a server that cannot be reached
  // fails the push (Unavailable).
  StatusOr<SyncReport> PushAdapter(const LoraAdapter& adapter,
                                   std::string_view name,
                                   uint64_t version) override;
  // The oldest version of adapter `name` over the servers (GET /v1/models);
  // 0 when a server does not hold it.
  StatusOr<uint64_t> AdapterVersion(std::string_view name) override;
  // Over the servers that answer and are not behind.
  StatusOr<uint64_t> WeightVersion() override;
  StatusOr<uint64_t> NewestWeightVersion() override;
  int64_t vocab_size() const override { return vocab_size_; }

  RolloutClient& client() { return *client_; }

 private:
  RemoteRollouts(std::unique_ptr<RolloutClient> client, Mesh* trainer_mesh,
                 int64_t vocab_size)
      : client_(std::move(client)),
        trainer_mesh_(trainer_mesh),
        vocab_size_(vocab_size) {}

  std::unique_ptr<RolloutClient> client_;
  Mesh* const trainer_mesh_;
  const int64_t vocab_size_;
  proto::UpdateParams message_;  // Reused across pushes.
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_REMOTE_REMOTE_ROLLOUTS_H_
