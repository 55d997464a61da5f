// The RL loop: the sampler on the rollout mesh generates batches while the
// learner on the actor mesh trains, with the trainer's weights pushed into
// the sampler in place after every (k-th) step.
//
// Overlap. With max_staleness s, up to s batches are generated ahead of the
// one being trained: batch k+s is submitted as soon as step k-1's weights
// are in the sampler, so while the learner trains on batch k the engine is
// already sampling batch k+1..k+s with the weights it has. s = 0 is
// strictly on-policy and serial. Tokens are tagged with the weight version
// that produced them (an update may land mid-batch); the importance ratio
// uses the sampler's own logprobs, so stale tokens are corrected, and each
// step reports its batch's versions and lag.
//
// Versions. The trainer's policy version starts at the engine's version
// and goes up by one per GRPO step; a sync sends the current one.
//
// LoRA. With a learner training an adapter (GrpoOptions::lora), rollouts
// run with the samplers' adapter options.lora_name, and syncs send the
// adapter alone. The run first pushes the learner's adapter as the next
// version of that adapter (creating it), so step 1 samples exactly the
// policy it trains; versions are then the adapter's.
//
// Data parallelism. When the learner has a DataParallelGroup (see
// GrpoLearner::set_data_parallel), every rank runs this loop with its own
// rollouts and the same options: rank r samples and trains its share of
// each batch's prompts (batch_size must divide among the ranks), with the
// seeds and prompt numbers of the whole batch, so every prompt is sampled
// as one process would sample it. Step metrics are the global batch's on
// every rank; after each step the ranks compare a content hash of their
// weights and stop, naming the ranks, if they differ. A failure on one
// rank (a rollout, a sync, on_step) stops every rank, and a stop request
// on any rank stops all after the same step.
//
// Failure. A refused or mismatched sync stops the run with the reason (the
// sampler keeps its previous weights, see WeightSync); so does a learner
// error (e.g. a non-finite loss: the learner refused it, nothing reached
// the sampler). Batches still in flight are aborted before returning.
#ifndef RLRT_TRAINER_BRIDGE_RL_LOOP_H_
#define RLRT_TRAINER_BRIDGE_RL_LOOP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "sampler/engine.h"
#include "trainer_bridge/grpo_learner.h"
#include "trainer_bridge/rl_task.h"
#include "trainer_bridge/rollout_backend.h"
#include "trainer_bridge/weight_sync.h"

namespace rlrt {

// Where the loop is, for a progress display.
struct RlProgress {
  int64_t step = 0;        // 1-based: the step being worked on.
  int64_t steps = 0;       // Of the run.
  const char* phase = "";  // "sampling", "reference", "training", "sync".
  // This rank's completion tokens of the step's batch received so far (as
  // each prompt's group finishes), and the most it can have: prompts x
  // num_generations x max_new_tokens (per sampling round).
  int64_t tokens_done = 0;
  int64_t tokens_target = 0;
};

struct RlLoopOptions {
  int64_t steps = 10;
  // Resuming: steps before this one were done by an earlier run (batch
  // indices, step numbers and seeds continue from here).
  int64_t first_step = 0;
  int64_t batch_size = 4;       // Prompts per step.
  int64_t num_generations = 4;  // G: completions per prompt.
  int64_t max_new_tokens = 128;
  float temperature = 1.0f;  // Must equal the learner's.
  int64_t max_staleness = 1;
  int64_t sync_every = 1;  // Push weights after every k-th step (and the last).
  bool verify_sync = true;
  bool flush_cache = true;
  uint64_t seed = 0;
  // DAPO's overlong reward shaping (reward_shaping.h): each reward gains
  // overlong_penalty x OverlongPenalty(length, max_new_tokens,
  // overlong_buffer), reported as the reward part "overlong". 0: off.
  int64_t overlong_buffer = 0;
  double overlong_penalty = 1.0;
  // DAPO's dynamic sampling: groups whose rewards are all equal carry no
  // signal and are dropped; more rounds of fresh prompts are sampled until
  // the batch is full of informative groups, at most max_sampling_rounds
  // rounds per step (then uninformative groups pad it). Step k's rounds
  // use the task's batch indices k x max_sampling_rounds + round.
  bool dynamic_sampling = false;
  int64_t max_sampling_rounds = 4;
  // The samplers' name for the adapter a LoRA learner trains.
  std::string lora_name = "policy";
  // Asked once per step, after training (may be empty). True makes that
  // step the last: its weights are pushed, batches sampled ahead are
  // abandoned, and the run returns normally (summary.stopped_early). For a
  // time budget or a graceful stop on a signal.
  std::function<bool()> stop_requested;
  // Told on the loop's thread whenever the phase changes or a group of
  // completions arrives (may be empty; must be quick).
  std::function<void(const RlProgress&)> on_progress;
};

struct RlStepMetrics {
  int64_t step = 0;  // 1-based.
  GrpoStepMetrics grpo;
  // Mean of each reward function over the batch.
  std::map<std::string, double> reward_parts;
  int64_t rollout_tokens = 0;  // Sampled, over all rounds.
  // Submission to the batch's last token (summed over sampling rounds).
  double rollout_seconds = 0;
  double wait_seconds = 0;  // The trainer blocked waiting for the batch.
  // Dynamic sampling: rounds sampled (1 without it), groups dropped for
  // equal rewards, and uninformative groups trained on because the rounds
  // ran out. The reward metrics are the trained groups'.
  int64_t sampling_rounds = 1;
  int64_t groups_dropped = 0;
  int64_t groups_padded = 0;
  double sync_seconds = 0;
  double step_seconds = 0;  // Wall time of this iteration of the loop.
  // Weight versions the batch was sampled with, and the policy version it
  // was trained at minus the oldest of them.
  uint64_t sampled_version_min = 0;
  uint64_t sampled_version_max = 0;
  uint64_t policy_version = 0;  // After this step.
  int64_t version_lag = 0;
  bool synced = false;
  SyncReport sync;
  // Data parallelism: the number of ranks, and the content hash of the
  // master weights every rank holds after this step (they compared it).
  int ranks = 1;
  uint64_t replica_weights_hash = 0;
};

struct RlRunSummary {
  int64_t steps = 0;
  double seconds = 0;
  double rollout_seconds = 0;  // Sums over the steps.
  double train_seconds = 0;
  double wait_seconds = 0;
  double sync_seconds = 0;
  uint64_t final_version = 0;
  double first_reward_mean = 0;
  double last_reward_mean = 0;
  bool stopped_early = false;  // options.stop_requested said so.
};

using RlStepCallback = std::function<Status(const RlStepMetrics&)>;

// Sends `learner`'s policy to the samplers as `version`: its weights, or,
// for a LoRA learner, the adapter alone as the samplers' adapter
// `lora_name`.
StatusOr<SyncReport> PushPolicy(RolloutBackend& rollouts,
                                const GrpoLearner& learner,
                                const std::string& lora_name, uint64_t version);
// The version of that policy the samplers hold (the adapter's for a LoRA
// learner: 0 before its first push).
StatusOr<uint64_t> PolicyVersion(RolloutBackend& rollouts,
                                 const GrpoLearner& learner,
                                 const std::string& lora_name);

// Runs options.steps GRPO steps. `on_step` (may be empty) sees each step's
// metrics after its sync; an error from it stops the run.
StatusOr<RlRunSummary> RunRlLoop(RolloutBackend& rollouts, GrpoLearner& learner,
                                 RlTask& task, const RlLoopOptions& options,
                                 const RlStepCallback& on_step = {});
// The same on an in-process engine (LocalRollouts with options' verify_sync
// and flush_cache).
StatusOr<RlRunSummary> RunRlLoop(SamplerEngine& engine, GrpoLearner& learner,
                                 RlTask& task, const RlLoopOptions& options,
                                 const RlStepCallback& on_step = {});

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_RL_LOOP_H_
