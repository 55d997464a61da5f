// grpo_gsm8k_10steps: GRPO on GSM8K, end to end in one process.
//
// The local devices split into a rollout mesh (a SamplerEngine, started with
// dummy weights) and an actor mesh (the GRPO learner and its frozen
// reference; or a separate "reference" mesh). With --model_dir the trainer
// loads the checkpoint and pushes it into the running engine with one
// UpdateParams (weights_swapped); then each step samples a batch of GSM8K
// questions, G completions each, scores them, trains, and pushes the new
// weights in place. Rollout of the next batch overlaps training of this one
// (--max_staleness). Prints JSON lines: partition, engine_ready_dummy,
// weights_swapped, sft_step, eval, grpo_step, generate_result, summary.
//
// This file holds the flags, ResolveFlags (the flags, validated and with
// their defaults filled in, as a DemoConfig) and Run, the reference flow:
// one call per phase. The phases are in grpo_demo_phases.{h,cc}.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "base/status.h"
#include "examples/cli_support.h"
#include "examples/grpo_demo_config.h"
#include "examples/grpo_demo_phases.h"
#include "examples/learner_flags.h"
#include "examples/model_flags.h"
#include "examples/task_flags.h"
#include "models/lora/lora_config.h"
#include "sampler/adapter_registry.h"
#include "trainer_bridge/data_parallel.h"
#ifdef RLRT_HAVE_MPI
#include "trainer_bridge/mpi/mpi_group.h"
#endif

// Model and data.
DEFINE_string(model_dir, "",
              "A Hugging Face Qwen3 checkpoint directory; empty: --preset "
              "with dummy weights.");
DEFINE_string(preset, "qwen3-tiny", "Model shape when --model_dir is empty.");
DEFINE_string(load_format, "",
              "How the trainer gets its initial weights: 'safetensors' (the "
              "default with --model_dir) or 'dummy' (the default, and the only "
              "choice, with --preset).");
DEFINE_string(tokenizer_dir, "",
              "tokenizer.json + tokenizer_config.json; empty: --model_dir if "
              "it has them, else the Qwen3 tokenizer in ../shared.");
// Remote rollouts.
DEFINE_string(rollout_servers, "",
              "Comma-separated rollout server URLs (build/bin/rollout_server): "
              "sample through them and push weights with "
              "/admin/update_params (or, above --update_chunk_bytes, as a "
              "stream of chunks) instead of an in-process engine.");
DEFINE_int64(update_chunk_bytes, int64_t{256} << 20,
             "With --rollout_servers: weight pushes larger than this go as a "
             "stream of chunks of this size (/admin/update_stream/...).");
DEFINE_string(admin_token, "", "Bearer token for the servers' admin API.");
// Devices.
DEFINE_string(partition, "",
              "e.g. 'rollout=1,actor=rest' or "
              "'rollout=1,actor=1,reference=rest'; empty: half each.");
DEFINE_int32(num_virtual_devices, 0, "Use N virtual devices (testing).");
// Rollout.
DEFINE_int32(batch_size, 4, "Prompts per step.");
DEFINE_int32(num_generations, 4, "Completions per prompt (G).");
DEFINE_int32(max_new_tokens, 64, "Completion length limit.");
DEFINE_int32(max_staleness, 1,
             "Batches sampled ahead of training (0: serial, on-policy).");
DEFINE_int32(sync_every, 1, "Push weights to the sampler every k steps.");
DEFINE_int32(overlong_buffer, 0,
             "DAPO's overlong shaping: completions longer than "
             "--max_new_tokens minus this lose reward linearly, down to "
             "--overlong_penalty at the limit; 0: off.");
DEFINE_double(overlong_penalty, 1.0,
              "The reward a completion at --max_new_tokens loses with "
              "--overlong_buffer.");
DEFINE_bool(dynamic_sampling, false,
            "DAPO: drop groups whose rewards are all equal and sample fresh "
            "prompts until the batch is full (--max_sampling_rounds).");
DEFINE_int32(max_sampling_rounds, 4,
             "--dynamic_sampling: sampling rounds per step at most; then "
             "flat groups fill the batch.");
DEFINE_int64(max_total_tokens, 0,
             "Engine KV capacity in tokens; 0: enough for the batches in "
             "flight and the evaluation.");
DEFINE_bool(release_idle_kv_memory, true,
            "Engine: give free KV pages' memory back to the kernel whenever "
            "the sampler runs out of work, so it is not resident through "
            "the training step (faulting it back costs up to ~1 s/GiB on a "
            "VM whose host reclaims freed memory).");
// Learning.
DEFINE_int32(steps, 10, "GRPO steps.");
DEFINE_int64(max_micro_batch_tokens, 0,
             "Training micro-batch size in tokens (gradients accumulate "
             "over micro-batches); 0: the whole batch, up to 8192.");
DEFINE_int64(reference_micro_batch_tokens, 0,
             "Micro-batch size of the KL reference's scoring in tokens (it "
             "only scores, so smaller batches cost it little and shrink its "
             "workspace); 0: 1024, or one prompt and completion if longer.");
DEFINE_int32(sft_steps, 0,
             "Supervised warm-start steps on GSM8K's worked answers before "
             "GRPO.");
DEFINE_int32(sft_batch_size, 4, "Examples per SFT step.");
DEFINE_double(sft_learning_rate, 0,
              "Learning rate of the SFT warm start; 0: --learning_rate.");
// Evaluation and output.
DEFINE_int32(eval_every, 5,
             "Greedy accuracy on --eval_examples test questions every N "
             "steps (and before the first); 0: off.");
DEFINE_int32(eval_examples, 16, "Test questions per evaluation.");
DEFINE_uint64(seed, 0, "Seed of dummy weights, data order and sampling.");
DEFINE_string(metrics_out, "", "Also append every JSON line to this file.");
DEFINE_string(plot, "",
              "Draw the run (reward, eval accuracy, KL, clip fraction, "
              "logprob mismatch, length, entropy, time split) to this PNG "
              "after every step (gnuplot; also build/bin/plot_metrics).");
DEFINE_bool(progress, true,
            "Show the step, phase, tokens, rate, elapsed time and ETA on "
            "stderr: one line redrawn in place on a terminal, else a plain "
            "line every --progress_every_s.");
DEFINE_double(progress_every_s, 10,
              "Seconds between progress lines when stderr is no terminal.");
DEFINE_int32(checkpoint_every, 0,
             "Save a training checkpoint (weights, optimizer state, step, "
             "data position, seeds) to --checkpoint_dir every N steps; 0: "
             "off.");
DEFINE_string(checkpoint_dir, "", "Where training checkpoints go.");
DEFINE_int32(checkpoint_keep, 0,
             "Keep only the newest N checkpoints in --checkpoint_dir; 0: all.");
DEFINE_double(max_seconds, 0,
              "Time budget for the GRPO steps: the step that passes it is the "
              "last (its weights are pushed, the summary says "
              "stopped_early); 0: none. SIGTERM and SIGINT stop the same way.");
DEFINE_bool(resume, false,
            "Continue from the latest checkpoint in --checkpoint_dir.");
DEFINE_int32(debug_sigkill_after_step, 0,
             "Testing aid: SIGKILL this process right after step N (and its "
             "checkpoint).");
// Data parallelism.
DEFINE_bool(distributed, false,
            "Run as one rank of `mpirun -np N`: every rank has its own "
            "devices (rollout and actor meshes) and trains its share of each "
            "batch; gradients are summed over the ranks (Open MPI) and every "
            "rank applies the same step. --batch_size and --sft_batch_size "
            "must divide by N.");
DEFINE_int32(collective_timeout_s, 600,
             "With --distributed: a rank waiting longer than this for the "
             "others (one died or hangs) ends the job on every rank.");
DEFINE_int32(debug_hang_after_step, 0,
             "Testing aid: stop this process (SIGSTOP, as a hung rank) right "
             "after step N.");
DEFINE_int32(debug_fault_rank, -1,
             "Testing aid: the rank --debug_sigkill_after_step and "
             "--debug_hang_after_step act on (-1: every rank).");
DEFINE_string(save_dir, "",
              "Write the final policy here as a Hugging Face checkpoint.");

DEFINE_int32(lora_rank, 0,
             "Train a LoRA adapter of this rank on the frozen model (PEFT's "
             "r); 0: full fine-tuning. The in-process sampler then reads "
             "the trainer's base in place and receives the adapter alone.");
DEFINE_double(lora_alpha, 32.0,
              "LoRA alpha: the update is scaled by "
              "alpha / rank (alpha / sqrt(rank) with "
              "--use_rslora).");
DEFINE_bool(use_rslora, false, "rsLoRA scaling, alpha / sqrt(rank).");
DEFINE_string(lora_target_modules, "all",
              "Comma-separated projections to adapt (q_proj, k_proj, v_proj, "
              "o_proj, gate_proj, up_proj, down_proj), or 'all'.");
DEFINE_string(lora_version_policy, "latest",
              "When an adapter update lands mid-rollout: 'latest' moves "
              "running sequences to it at the next step; 'pin' lets each "
              "finish under the version it started with (keeping "
              "--max_staleness + 1 versions resident).");

namespace rlrt {
namespace {

// The flags are read here and nowhere else: CheckFlags and the *FromFlags
// helpers feed ResolveFlags, which builds the DemoConfig the phases read.
// None of them is written after parsing (main sets only glog's logtostderr,
// before logging starts, as every binary here does).

Status CheckFlags() {
  if (FLAGS_steps < 1) return InvalidArgumentError("--steps must be >= 1");
  if (FLAGS_batch_size < 1)
    return InvalidArgumentError("--batch_size must be >= 1");
  if (FLAGS_num_generations < 2)
    return InvalidArgumentError("--num_generations must be >= 2");
  if (FLAGS_max_new_tokens < 1)
    return InvalidArgumentError("--max_new_tokens must be >= 1");
  if (FLAGS_max_sampling_rounds < 1)
    return InvalidArgumentError("--max_sampling_rounds must be >= 1");
  if (FLAGS_eval_every < 0 || FLAGS_eval_examples < 1)
    return InvalidArgumentError(
        "--eval_every must be >= 0 and --eval_examples >= 1");
  if (FLAGS_sft_steps < 0 || FLAGS_sft_batch_size < 1)
    return InvalidArgumentError(
        "--sft_steps must be >= 0 and --sft_batch_size >= 1");
  if (FLAGS_update_chunk_bytes < 1)
    return InvalidArgumentError("--update_chunk_bytes must be >= 1");
  if (FLAGS_checkpoint_every < 0 || FLAGS_checkpoint_keep < 0)
    return InvalidArgumentError(
        "--checkpoint_every and --checkpoint_keep must be >= 0");
  if (!(FLAGS_max_seconds >= 0))
    return InvalidArgumentError("--max_seconds must be >= 0");
  if ((FLAGS_checkpoint_every > 0 || FLAGS_resume) &&
      FLAGS_checkpoint_dir.empty())
    return InvalidArgumentError(
        "--checkpoint_every and --resume need --checkpoint_dir");
  if (StatusOr<LoraVersionPolicy> policy =
          ParseLoraVersionPolicy(FLAGS_lora_version_policy);
      !policy.ok())
    return policy.status().WithContext("--lora_version_policy");
  if (FLAGS_lora_rank < 0)
    return InvalidArgumentError(
        "--lora_rank must be >= 0 (0: full fine-tuning)");
  if (FLAGS_collective_timeout_s < 1)
    return InvalidArgumentError("--collective_timeout_s must be >= 1");
  return OkStatus();
}

// --lora_*: the adapter the learner trains, or none.
StatusOr<std::optional<LoraConfig>> LoraFromFlags() {
  if (FLAGS_lora_rank == 0) return std::optional<LoraConfig>();
  LoraConfig lora;
  lora.rank = FLAGS_lora_rank;
  lora.alpha = FLAGS_lora_alpha;
  lora.use_rslora = FLAGS_use_rslora;
  StatusOr<uint32_t> targets =
      ParseLoraTargetModules(FLAGS_lora_target_modules);
  if (!targets.ok())
    return targets.status().WithContext("--lora_target_modules");
  lora.target_mask = *targets;
  RETURN_IF_ERROR(ValidateLoraConfig(lora, int64_t{1} << 16));
  return std::optional<LoraConfig>(lora);
}

// The trainer's initial weights; --load_format defaults to safetensors with
// --model_dir and to dummy with --preset.
StatusOr<ModelSource> TrainerModelFromFlags() {
  ModelSource source;
  source.model_dir = FLAGS_model_dir;
  source.preset = FLAGS_model_dir.empty() ? FLAGS_preset : "";
  source.load_format = !FLAGS_load_format.empty() ? FLAGS_load_format
                       : FLAGS_model_dir.empty()  ? "dummy"
                                                  : "safetensors";
  source.seed = FLAGS_seed;
  source.dtype = FLAGS_dtype;
  if (source.load_format != "dummy" && source.load_format != "safetensors")
    return InvalidArgumentError("--load_format must be safetensors or dummy");
  if (FLAGS_model_dir.empty() && source.load_format != "dummy")
    return InvalidArgumentError(
        "--preset needs --load_format=dummy (or give --model_dir)");
  return source;
}

StatusOr<GrpoOptions> LearnerOptionsFromFlags() {
  ASSIGN_OR_RETURN(GrpoOptions g, GrpoOptionsFromFlags());
  ASSIGN_OR_RETURN(g.lora, LoraFromFlags());
  g.lora_seed = FLAGS_seed;
  g.loss.max_completion_length = FLAGS_max_new_tokens;
  ASSIGN_OR_RETURN(g.kv_dtype, ParseDTypeFlag(FLAGS_kv_cache_dtype));
  g.lr.total_steps = static_cast<int64_t>(FLAGS_steps) * FLAGS_num_iterations +
                     FLAGS_sft_steps;
  // One micro-batch for the whole rollout batch when it fits the cap: a
  // batch split in several is scored once and then forwarded again per
  // micro-batch for the backward.
  const int64_t sequence = FLAGS_max_prompt_length + FLAGS_max_new_tokens;
  g.max_micro_batch_tokens =
      FLAGS_max_micro_batch_tokens > 0
          ? FLAGS_max_micro_batch_tokens
          : std::clamp<int64_t>(
                int64_t{FLAGS_batch_size} * FLAGS_num_generations * sequence,
                sequence, 8192);
  if (g.max_micro_batch_tokens < sequence)
    return InvalidArgumentError(
        "--max_micro_batch_tokens must hold one prompt and completion (" +
        std::to_string(sequence) + " tokens)");
  g.reference_micro_batch_tokens =
      FLAGS_reference_micro_batch_tokens > 0
          ? FLAGS_reference_micro_batch_tokens
          : std::max<int64_t>(
                sequence, std::min<int64_t>(1024, g.max_micro_batch_tokens));
  if (g.reference_micro_batch_tokens < sequence)
    return InvalidArgumentError(
        "--reference_micro_batch_tokens must hold one prompt and completion "
        "(" +
        std::to_string(sequence) + " tokens)");
  return g;
}

// The in-process engine: dummy weights of the trainer's model, room for
// the batches in flight and an evaluation.
EngineOptions EngineOptionsFromFlags(const ModelSource& trainer_model,
                                     const std::string& tokenizer_dir) {
  const int64_t in_flight = int64_t{FLAGS_batch_size} * FLAGS_num_generations *
                            (FLAGS_max_staleness + 1);
  const int64_t eval_requests = FLAGS_eval_every > 0 ? FLAGS_eval_examples : 0;
  const int64_t sequence = FLAGS_max_prompt_length + FLAGS_max_new_tokens;
  EngineOptions o;
  o.model = trainer_model;
  o.model.load_format = "dummy";
  o.kv_cache_dtype = FLAGS_kv_cache_dtype;
  o.tokenizer_dir = tokenizer_dir;
  o.max_running_requests = static_cast<int32_t>(in_flight + eval_requests);
  o.max_total_tokens = FLAGS_max_total_tokens > 0
                           ? FLAGS_max_total_tokens
                           : (in_flight + eval_requests) * sequence;
  o.context_length = sequence;
  o.max_lora_rank = std::max<int64_t>(o.max_lora_rank, FLAGS_lora_rank);
  o.lora_version_policy = FLAGS_lora_version_policy;
  o.lora_resident_versions = FLAGS_max_staleness + 1;
  o.release_idle_kv_memory = FLAGS_release_idle_kv_memory;
  return o;
}

// A distributed run shares the servers out: rank r drives urls r, r + N, ...
StatusOr<RolloutClientOptions> RemoteOptionsFromFlags(int rank, int ranks) {
  RolloutClientOptions client;
  const std::vector<std::string> urls = SplitList(FLAGS_rollout_servers);
  if (!urls.empty() && static_cast<int>(urls.size()) < ranks)
    return InvalidArgumentError(
        "--rollout_servers lists " + std::to_string(urls.size()) +
        " servers for " + std::to_string(ranks) +
        " ranks: every rank needs at least one of its own");
  for (size_t i = rank; i < urls.size(); i += ranks)
    client.urls.push_back(urls[i]);
  client.admin_token = FLAGS_admin_token;
  client.update_chunk_bytes = static_cast<size_t>(FLAGS_update_chunk_bytes);
  return client;
}

RlLoopOptions LoopOptionsFromFlags() {
  RlLoopOptions loop;
  loop.steps = FLAGS_steps;
  loop.batch_size = FLAGS_batch_size;
  loop.num_generations = FLAGS_num_generations;
  loop.max_new_tokens = FLAGS_max_new_tokens;
  loop.temperature = static_cast<float>(FLAGS_temperature);
  loop.max_staleness = FLAGS_max_staleness;
  loop.sync_every = FLAGS_sync_every;
  loop.overlong_buffer = FLAGS_overlong_buffer;
  loop.overlong_penalty = FLAGS_overlong_penalty;
  loop.dynamic_sampling = FLAGS_dynamic_sampling;
  loop.max_sampling_rounds = FLAGS_max_sampling_rounds;
  loop.seed = FLAGS_seed;
  return loop;
}

// Validates the flags and resolves their defaults, once. `rank` of
// `ranks`: this process's place in a distributed run (0 of 1 otherwise).
StatusOr<DemoConfig> ResolveFlags(int rank, int ranks) {
  RETURN_IF_ERROR(CheckFlags());
  DemoConfig c;
  c.rank = rank;
  c.num_ranks = ranks;
  if (FLAGS_batch_size % ranks != 0 || FLAGS_sft_batch_size % ranks != 0)
    return InvalidArgumentError(
        "--batch_size and --sft_batch_size must divide by the number of "
        "ranks (" +
        std::to_string(ranks) + "): a rank trains whole groups");
  ASSIGN_OR_RETURN(c.trainer_model, TrainerModelFromFlags());
  ASSIGN_OR_RETURN(c.learner, LearnerOptionsFromFlags());
  c.tokenizer_dir = ResolveTokenizerDir(FLAGS_tokenizer_dir, FLAGS_model_dir);
  ASSIGN_OR_RETURN(TaskFlags task, TaskFromFlags());
  c.train_file = task.train_file;
  c.eval_file = task.eval_file;
  c.fields = task.fields;
  c.task = task.options;
  c.reward_service = task.reward_service;
  c.reward_url_weight = task.reward_url_weight;
  c.remote_rollouts = !FLAGS_rollout_servers.empty();
  ASSIGN_OR_RETURN(c.remote, RemoteOptionsFromFlags(rank, ranks));
  c.engine = EngineOptionsFromFlags(c.trainer_model, c.tokenizer_dir);
  c.partition = FLAGS_partition;
  c.num_virtual_devices = FLAGS_num_virtual_devices;
  c.loop = LoopOptionsFromFlags();
  c.sft_steps = FLAGS_sft_steps;
  c.sft_batch_size = FLAGS_sft_batch_size;
  if (FLAGS_sft_learning_rate < 0)
    return InvalidArgumentError("--sft_learning_rate must be >= 0");
  if (FLAGS_sft_learning_rate > 0)
    c.sft_learning_rate = FLAGS_sft_learning_rate;
  c.eval_every = c.eval_file.empty() ? 0 : FLAGS_eval_every;
  c.eval_examples = FLAGS_eval_examples;
  c.checkpoint_every = FLAGS_checkpoint_every;
  c.checkpoint_dir = FLAGS_checkpoint_dir;
  c.checkpoint_keep = FLAGS_checkpoint_keep;
  c.resume = FLAGS_resume;
  c.max_seconds = FLAGS_max_seconds;
  c.debug_sigkill_after_step = FLAGS_debug_sigkill_after_step;
  c.debug_fault_rank = FLAGS_debug_fault_rank;
  c.debug_hang_after_step = FLAGS_debug_hang_after_step;
  c.save_dir = FLAGS_save_dir;
  c.metrics_out = FLAGS_metrics_out;
  c.plot = FLAGS_plot;
  c.progress = FLAGS_progress;
  if (!(FLAGS_progress_every_s > 0))
    return InvalidArgumentError("--progress_every_s must be > 0");
  c.progress_every_s = FLAGS_progress_every_s;
  return c;
}

// The reference flow: each phase is one call (grpo_demo_phases.h).
// `group`: the ranks of a distributed run (null: one process).
Status Run(const DemoConfig& config, DataParallelGroup* group, JsonLines& out) {
  ASSIGN_OR_RETURN(Meshes meshes, CreateMeshes(config, out));
  // Data first: a missing file should fail before anything heavy starts.
  ASSIGN_OR_RETURN(TaskData data, LoadTaskData(config));
  ASSIGN_OR_RETURN(Sampler sampler, StartSampler(config, meshes, out));
  ASSIGN_OR_RETURN(Learner learner,
                   CreateLearner(config, meshes, sampler, group));
  ASSIGN_OR_RETURN(TrainingStart start,
                   ResumeOrSwap(config, meshes, sampler, learner, out));
  ASSIGN_OR_RETURN(Tasks tasks,
                   CreateTasks(config, std::move(data), sampler, learner));
  RETURN_IF_ERROR(WarmStartSft(config, start, tasks, sampler, learner, out));
  ASSIGN_OR_RETURN(LoopResult result,
                   RunGrpoLoop(config, start, tasks, sampler, learner, out));
  return Report(config, tasks, sampler, learner, result, out);
}

int Fail(const Status& status) {
  std::cerr << "grpo_gsm8k_10steps: " << status << std::endl;
  return 1;
}

// --distributed: the MPI ranks (null without the flag).
StatusOr<std::unique_ptr<DataParallelGroup>> JoinRanks(int* argc,
                                                       char*** argv) {
  if (!FLAGS_distributed) return std::unique_ptr<DataParallelGroup>();
#ifdef RLRT_HAVE_MPI
  ASSIGN_OR_RETURN(std::unique_ptr<MpiGroup> group,
                   MpiGroup::Create(argc, argv,
                                    std::chrono::seconds(std::max(
                                        1, FLAGS_collective_timeout_s))));
  return std::unique_ptr<DataParallelGroup>(std::move(group));
#else
  return UnimplementedError(
      "--distributed needs Open MPI, and this build has none: install "
      "libopenmpi-dev (make setup does) and rebuild");
#endif
}

// Ends a distributed run on every rank at once: a rank that returned
// while others wait in a collective would otherwise leave them waiting for
// the timeout.
[[noreturn]] void AbortRanks(DataParallelGroup* group, int exit_code) {
#ifdef RLRT_HAVE_MPI
  static_cast<MpiGroup*>(group)->AbortJob(exit_code);
#endif
  std::exit(exit_code);
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "GRPO on GSM8K: rollouts on the rollout mesh, training on the actor "
      "mesh, weights pushed into the sampler in place after every step.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;  // glog's own flag, set before it starts.
  google::InitGoogleLogging(argv[0]);
  rlrt::ReturnLargeBuffersToTheSystem();
  rlrt::StatusOr<std::unique_ptr<rlrt::DataParallelGroup>> group =
      rlrt::JoinRanks(&argc, &argv);
  if (!group.ok()) return rlrt::Fail(group.status());
  rlrt::DataParallelGroup* ranks = group->get();
  auto fail = [&](const rlrt::Status& status) {
    const int code = rlrt::Fail(status);
    if (ranks != nullptr && ranks->size() > 1) rlrt::AbortRanks(ranks, code);
    return code;
  };
  const rlrt::StatusOr<rlrt::DemoConfig> config =
      ranks != nullptr ? rlrt::ResolveFlags(ranks->rank(), ranks->size())
                       : rlrt::ResolveFlags(0, 1);
  if (!config.ok()) return fail(config.status());
  std::ofstream metrics;
  if (!config->metrics_out.empty() && config->rank == 0) {
    metrics.open(config->metrics_out, std::ios::app);
    if (!metrics)
      return fail(rlrt::InvalidArgumentError("cannot open --metrics_out " +
                                             config->metrics_out));
  }
  rlrt::JsonLines out(metrics.is_open() ? &metrics : nullptr,
                      /*quiet=*/config->rank != 0);
  if (!config->plot.empty()) out.Record();
  rlrt::InstallStopHandlers();
  const rlrt::Status status = rlrt::Run(*config, ranks, out);
  return status.ok() ? 0 : fail(status);
}
