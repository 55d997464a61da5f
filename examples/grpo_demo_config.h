// The settings of grpo_gsm8k_10steps, resolved once from its flags by
// ResolveFlags (in grpo_gsm8k_10steps.cc): validated, defaults filled in,
// and already shaped as the options the library takes. The phases
// (grpo_demo_phases.h) read this and never a flag.
#ifndef RLRT_EXAMPLES_GRPO_DEMO_CONFIG_H_
#define RLRT_EXAMPLES_GRPO_DEMO_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "models/forward/model_source.h"
#include "sampler/engine_options.h"
#include "trainer_bridge/grpo_learner.h"
#include "trainer_bridge/remote/reward_service.h"
#include "trainer_bridge/remote/rollout_client.h"
#include "trainer_bridge/rl_loop.h"
#include "trainer_bridge/tasks/dataset.h"
#include "trainer_bridge/tasks/dataset_task.h"

namespace rlrt {

struct DemoConfig {
  // Model and data. The trainer's initial weights: --model_dir or --preset,
  // with --load_format resolved ("dummy" or "safetensors", never empty).
  ModelSource trainer_model;
  std::string tokenizer_dir;  // Resolved: never empty.
  // The task's data: GSM8K's train.jsonl and test.jsonl unless --dataset
  // names another file (then evaluation needs --eval_dataset).
  std::string train_file;
  std::string eval_file;  // Empty: no evaluation.
  DatasetFields fields;

  // Rollouts: remote servers (--rollout_servers), or an in-process engine
  // on the rollout mesh of `partition`.
  bool remote_rollouts = false;
  RolloutClientOptions remote;  // urls and admin_token.
  EngineOptions engine;         // In-process: dummy weights, sizes resolved.
  std::string partition;        // In-process only; remote: all devices train.
  int num_virtual_devices = 0;

  // Data parallelism (--distributed under mpirun): this process's rank and
  // the number of ranks; each rank has its own devices and samplers (its
  // share of --rollout_servers: urls r, r + N, ...) and trains its share of
  // every batch.
  int rank = 0;
  int num_ranks = 1;

  // Learning.
  GrpoOptions learner;  // All but sample_vocab, which the sampler sets.
  RlLoopOptions loop;   // All but first_step and stop_requested.
  DatasetTaskOptions task;
  // --reward_url: the service's rewards, weighted, added to the task's.
  RewardServiceOptions reward_service;  // url empty: none.
  double reward_url_weight = 1.0;
  int sft_steps = 0;
  int sft_batch_size = 4;
  std::optional<double> sft_learning_rate;  // Unset: the learner's schedule.

  // Evaluation and output.
  int eval_every = 0;  // 0: no evaluation.
  int eval_examples = 16;
  int checkpoint_every = 0;  // 0: no training checkpoints.
  std::string checkpoint_dir;
  int checkpoint_keep = 0;
  bool resume = false;
  double max_seconds = 0;  // 0: no time budget.
  int debug_sigkill_after_step = 0;
  int debug_hang_after_step = 0;
  int debug_fault_rank = -1;  // -1: every rank.
  std::string save_dir;
  std::string metrics_out;
  std::string plot;              // --plot: a PNG redrawn after every step.
  bool progress = true;          // The progress line on stderr (rank 0).
  double progress_every_s = 10;  // Its period when stderr is no terminal.
};

}  // namespace rlrt

#endif  // RLRT_EXAMPLES_GRPO_DEMO_CONFIG_H_
