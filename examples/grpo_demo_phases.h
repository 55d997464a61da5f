// The phases of grpo_gsm8k_10steps, in the order Run() calls them. Each
// reads the resolved DemoConfig (never a flag) and prints its JSON lines
// through a JsonLines.
//
//   CreateMeshes     partition
//   LoadTaskData     (files only: a missing one fails before anything heavy)
//   StartSampler     engine_ready_dummy, or rollout_servers
//   CreateLearner    (the trainer's weights on the actor mesh)
//   ResumeOrSwap     resumed, or weights_swapped (or a checksum proof)
//   CreateTasks      (the GSM8K train and eval tasks)
//   WarmStartSft     sft_step..., weights_swapped
//   RunGrpoLoop      eval, grpo_step..., checkpoint_saved, eval...
//   Report           generate_result, summary (and --save_dir)
#ifndef RLRT_EXAMPLES_GRPO_DEMO_PHASES_H_
#define RLRT_EXAMPLES_GRPO_DEMO_PHASES_H_

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.h"
#include "examples/grpo_demo_config.h"
#include "examples/progress_line.h"
#include "models/config/model_config.h"
#include "models/forward/model_source.h"
#include "models/tokenizer/tokenizer.h"
#include "partition/mesh.h"
#include "partition/partition_spec.h"
#include "sampler/engine.h"
#include "trainer_bridge/grpo_learner.h"
#include "trainer_bridge/remote/remote_rollouts.h"
#include "trainer_bridge/remote/reward_service.h"
#include "trainer_bridge/rl_loop.h"
#include "trainer_bridge/rollout_backend.h"
#include "trainer_bridge/tasks/dataset_task.h"
#include "trainer_bridge/tasks/gsm8k.h"

namespace rlrt {

// Where the JSON lines go: stdout, and also `file` (--metrics_out) when
// not null. A quiet one (ranks other than 0 of a distributed run) prints
// nothing: rank 0's lines already hold the global figures.
class JsonLines {
 public:
  explicit JsonLines(std::ostream* file, bool quiet = false)
      : file_(file), quiet_(quiet) {}
  void Emit(const nlohmann::json& line);
  void EmitText(const std::string& line);  // A line already in JSON.
  // Keeps every line Emit prints (for --plot's picture).
  void Record() { record_ = true; }
  // While set, lines are printed through it (clearing the progress line).
  void set_progress(ProgressLine* progress) { progress_ = progress; }
  const std::vector<nlohmann::json>& recorded() const { return recorded_; }

 private:
  std::ostream* file_;
  const bool quiet_;
  bool record_ = false;
  std::vector<nlohmann::json> recorded_;
  ProgressLine* progress_ = nullptr;
};

// SIGTERM and SIGINT end the GRPO loop after the step in progress (as
// --max_seconds does); the summary names the signal.
void InstallStopHandlers();

// The actor mesh trains; the reference mesh holds the frozen reference (it
// may be the actor's); the rollout mesh runs the in-process engine.
struct Meshes {
  std::optional<Partition> partition;  // In-process rollouts.
  std::unique_ptr<Mesh> actor_only;    // Remote rollouts: every device.
  Mesh* actor = nullptr;
  Mesh* reference = nullptr;
  Mesh* rollout = nullptr;  // Null with remote rollouts.
};
StatusOr<Meshes> CreateMeshes(const DemoConfig& config, JsonLines& out);

struct TaskData {
  std::vector<TaskExample> train;
  std::vector<TaskExample> test;  // Empty without evaluation.
};
StatusOr<TaskData> LoadTaskData(const DemoConfig& config);

// The sampler side: an in-process engine on the rollout mesh (started with
// dummy weights), or remote rollout servers. Either way a RolloutBackend and
// a tokenizer.
struct Sampler {
  // LoRA: the frozen base, loaded once, read in place by the engine and the
  // learner (so it lives as long as either).
  std::shared_ptr<const LoadedModel> shared_base;
  std::unique_ptr<SamplerEngine> engine;  // In-process only.
  std::unique_ptr<Tokenizer> tokenizer;   // Remote only (engine's otherwise).
  std::unique_ptr<RolloutBackend> rollouts;
  RemoteRollouts* remote = nullptr;  // rollouts, when remote.
  const Tokenizer* tok() const {
    return engine ? engine->tokenizer() : tokenizer.get();
  }
};
StatusOr<Sampler> StartSampler(const DemoConfig& config, const Meshes& meshes,
                               JsonLines& out);

// The GRPO learner on the actor mesh, from --model_dir or dummy weights;
// with a data-parallel `group` (may be null), one replica of it.
struct Learner {
  std::shared_ptr<const LoadedModel> base;  // LoRA: read by grpo in place.
  std::unique_ptr<GrpoLearner> grpo;
  ModelConfig model_config;  // For the checkpoints it saves.
  // The samplers' name of the adapter being trained; empty without LoRA.
  std::string lora_name;
};
StatusOr<Learner> CreateLearner(const DemoConfig& config, const Meshes& meshes,
                                const Sampler& sampler,
                                DataParallelGroup* group);

// Where the GRPO steps start, and the weight version the sampler then holds.
struct TrainingStart {
  int64_t first_step = 0;
  uint64_t weight_version = 0;
};
// Makes the sampler hold the learner's weights: the latest training
// checkpoint's (--resume), the model's (--model_dir), or, with the same
// dummy weights on both sides, a checksum that proves it.
StatusOr<TrainingStart> ResumeOrSwap(const DemoConfig& config,
                                     const Meshes& meshes, Sampler& sampler,
                                     Learner& learner, JsonLines& out);

struct Tasks {
  std::unique_ptr<DatasetTask> train;
  std::unique_ptr<DatasetTask> eval;  // Null without evaluation.
  // --reward_url: `train` with the service's rewards added (null without).
  std::unique_ptr<RemoteRewardTask> remote;
  RlTask& rl() const {
    return remote != nullptr ? static_cast<RlTask&>(*remote) : *train;
  }
};
// The prompts use the chat template of the policy's model family.
StatusOr<Tasks> CreateTasks(const DemoConfig& config, TaskData data,
                            const Sampler& sampler, const Learner& learner);

// --sft_steps supervised steps on the dataset's answers, then one push;
// nothing when resuming (the checkpoint was made after them).
Status WarmStartSft(const DemoConfig& config, const TrainingStart& start,
                    const Tasks& tasks, Sampler& sampler, Learner& learner,
                    JsonLines& out);

struct LoopResult {
  RlRunSummary summary;
  double step_seconds = 0;  // Sum over the steps.
  std::optional<double> final_eval_accuracy;
};
// The GRPO steps, with an evaluation before the first (unless resuming)
// and every --eval_every steps, and a training checkpoint every
// --checkpoint_every steps.
StatusOr<LoopResult> RunGrpoLoop(const DemoConfig& config,
                                 const TrainingStart& start, const Tasks& tasks,
                                 Sampler& sampler, Learner& learner,
                                 JsonLines& out);

// One greedy answer from the final weights, the policy saved to
// --save_dir, and the summary line.
Status Report(const DemoConfig& config, const Tasks& tasks,
              const Sampler& sampler, const Learner& learner,
              const LoopResult& result, JsonLines& out);

}  // namespace rlrt

#endif  // RLRT_EXAMPLES_GRPO_DEMO_PHASES_H_
