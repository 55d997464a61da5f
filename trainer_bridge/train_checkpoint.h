// Training checkpoints for resuming a run: the policy's weights (a Hugging
// Face checkpoint directory, loadable on its own), AdamW's moments and step
// count, and the loop's position (the next step, the policy version, and
// what the data order and sampling seeds derive from).
//
// Layout: <dir>/step-<k>/{config.json, model.safetensors,
// optimizer.safetensors, state.json} and <dir>/latest naming the newest;
// plus reference.safetensors when the learner's KL reference is not the
// model it was created from (GrpoLearner::SetReference, e.g. after SFT).
// A LoRA learner's checkpoint holds its adapter in PEFT's format
// (adapter_config.json, adapter_model.safetensors) instead of the model,
// and the adapter's moments.
// Each step directory is written under a temporary name and renamed, and
// `latest` is replaced by rename, so a run killed at any moment leaves the
// previous checkpoint intact and `latest` pointing at a complete one.
#ifndef RLRT_TRAINER_BRIDGE_TRAIN_CHECKPOINT_H_
#define RLRT_TRAINER_BRIDGE_TRAIN_CHECKPOINT_H_

#include <cstdint>
#include <filesystem>
#include <optional>

#include "base/status.h"
#include "models/config/model_config.h"
#include "models/param_leaves.h"
#include "trainer_bridge/grpo_learner.h"

namespace rlrt {

struct TrainingState {
  int64_t step = 0;  // GRPO steps done; the next batch index.
  uint64_t policy_version = 0;
  uint64_t seed = 0;  // Data order and sampling seeds derive from it.
  int64_t batch_size = 0;
  int64_t num_generations = 0;
};

// With keep_last > 0, older step directories beyond the newest keep_last are
// removed once `latest` names the new one.
Status SaveTrainingCheckpoint(const std::filesystem::path& dir,
                              const GrpoLearner& learner,
                              const ModelConfig& config,
                              const TrainingState& state, int keep_last = 0);

struct LoadedTrainingCheckpoint {
  std::filesystem::path path;  // The step directory read.
  ModelConfig config;
  // The trained leaves: the model's, or a LoRA learner's adapter's (then
  // `lora` is set, and the moments are the adapter's).
  ParamLeaves weights;
  bool lora = false;
  ParamLeaves first_moment;
  ParamLeaves second_moment;
  int64_t optimizer_steps = 0;
  TrainingState state;
  // The KL reference, when the checkpoint has one (give it to
  // GrpoLearner::SetReference).
  std::optional<ParamLeaves> reference;
};

// The checkpoint `<dir>/latest` names. NotFound when there is none. One
// holding an adapter needs `adapter_base`, the config of the base it was
// trained on (FailedPrecondition without it).
StatusOr<LoadedTrainingCheckpoint> LoadLatestTrainingCheckpoint(
    const std::filesystem::path& dir, Mesh* mesh,
    const ModelConfig* adapter_base = nullptr);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_TRAIN_CHECKPOINT_H_
