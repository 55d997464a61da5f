#include "examples/grpo_demo_phases.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "base/format.h"
#include "base/timing.h"
#include "examples/cli_support.h"
#include "examples/metrics_plot.h"
#include "models/forward/model_source.h"
#include "models/io/checkpoint.h"
#include "models/leaf_checksum.h"
#include "models/lora/peft_io.h"
#include "partition/device.h"
#include "trainer_bridge/rl_metrics_json.h"
#include "trainer_bridge/train_checkpoint.h"
#include "trainer_bridge/weight_sync.h"

namespace rlrt {
namespace {

using nlohmann::json;

// The one global, and the one legitimate: a signal handler can only hand
// the signal to the program through a volatile std::sig_atomic_t with static
// storage. Set by SIGTERM/SIGINT; read by the loop's stop check and the
// summary.
volatile std::sig_atomic_t stop_signal = 0;

extern "C" void RequestStop(int signal) { stop_signal = signal; }

// A weights_swapped line: a push the sampler verified by its hash.
json SwapJson(const SyncReport& r, const std::string& source) {
  json line = SyncJson(r);
  line["phase"] = "weights_swapped";
  line["source"] = source;
  line["match"] = true;  // PushWeights verified the sampler's hash.
  return line;
}

json EvalJson(int64_t step, const TaskEvalResult& r) {
  return {{"phase", "eval"},
          {"step", step},
          {"examples", r.examples},
          {"correct", r.correct},
          {"accuracy", r.accuracy},
          {"strict_format_rate", double(r.strict_format) / r.examples},
          {"mean_completion_tokens", r.mean_completion_tokens},
          {"weight_version", r.weight_version},
          {"seconds", r.seconds}};
}

StatusOr<Sampler> StartRemoteSampler(const DemoConfig& config,
                                     const Meshes& meshes, JsonLines& out) {
  Sampler sampler;
  ASSIGN_OR_RETURN(std::unique_ptr<RemoteRollouts> remote,
                   RemoteRollouts::Create(config.remote, meshes.actor));
  ASSIGN_OR_RETURN(uint64_t version, remote->WeightVersion());
  out.Emit({{"phase", "rollout_servers"},
            {"urls", config.remote.urls},
            {"vocab_size", remote->vocab_size()},
            {"weight_version", version}});
  sampler.remote = remote.get();
  sampler.rollouts = std::move(remote);
  ASSIGN_OR_RETURN(sampler.tokenizer, LoadTokenizer(config.tokenizer_dir));
  return sampler;
}

// The learner's policy to the samplers, and its version there
// (rl_loop.h's, under the learner's adapter name).
StatusOr<SyncReport> PushPolicy(RolloutBackend& rollouts,
                                const Learner& learner, uint64_t version) {
  return PushPolicy(rollouts, *learner.grpo, learner.lora_name, version);
}

StatusOr<uint64_t> PolicyVersion(RolloutBackend& rollouts,
                                 const Learner& learner) {
  return PolicyVersion(rollouts, *learner.grpo, learner.lora_name);
}

// The in-process engine starts with dummy weights of the model's structure;
// with LoRA it reads the trainer's base in place instead.
StatusOr<Sampler> StartLocalSampler(const DemoConfig& config,
                                    const Meshes& meshes, JsonLines& out) {
  Sampler sampler;
  if (config.learner.lora) {
    ASSIGN_OR_RETURN(LoadedModel base,
                     LoadModel(config.trainer_model, meshes.actor));
    sampler.shared_base = std::make_shared<const LoadedModel>(std::move(base));
    ASSIGN_OR_RETURN(sampler.engine, SamplerEngine::CreateOnSharedBase(
                                         config.engine, meshes.rollout,
                                         sampler.shared_base->config,
                                         sampler.shared_base->weights));
  } else {
    ASSIGN_OR_RETURN(sampler.engine,
                     SamplerEngine::Create(config.engine, meshes.rollout));
  }
  out.EmitText(sampler.engine->ready_line());
  sampler.rollouts =
      std::make_unique<LocalRollouts>(sampler.engine.get(), meshes.actor);
  return sampler;
}

// Resumes from the latest training checkpoint: its weights and optimizer
// state into the learner, its policy into the sampler.
StatusOr<TrainingStart> Resume(const DemoConfig& config, const Meshes& meshes,
                               uint64_t version, Sampler& sampler,
                               Learner& learner, JsonLines& out) {
  const bool lora = learner.grpo->adapter() != nullptr;
  ASSIGN_OR_RETURN(
      LoadedTrainingCheckpoint saved,
      LoadLatestTrainingCheckpoint(config.checkpoint_dir, meshes.actor,
                                   lora ? &learner.model_config : nullptr));
  if (lora != saved.lora)
    return FailedPreconditionError(
        "the checkpoint in " + saved.path.string() + " holds " +
        (lora ? "full weights, not a LoRA adapter: resume without --lora_rank"
              : "a LoRA adapter: resume with the --lora_* flags it was made "
                "with"));
  const TrainingState& st = saved.state;
  if (st.seed != config.loop.seed || st.batch_size != config.loop.batch_size ||
      st.num_generations != config.loop.num_generations)
    return InvalidArgumentError(
        "the checkpoint in " + saved.path.string() +
        " was made with --seed=" + std::to_string(st.seed) +
        " --batch_size=" + std::to_string(st.batch_size) +
        " --num_generations=" + std::to_string(st.num_generations) +
        "; resume with the same flags");
  if (st.step >= config.loop.steps)
    return InvalidArgumentError(
        "the checkpoint is at step " + std::to_string(st.step) +
        ", nothing left of --steps=" + std::to_string(config.loop.steps));
  RETURN_IF_ERROR(learner.grpo->RestoreState(saved.weights, saved.first_moment,
                                             saved.second_moment,
                                             saved.optimizer_steps));
  if (saved.reference) {
    RETURN_IF_ERROR(learner.grpo->SetReference(*saved.reference));
  }
  // The restored policy goes to the sampler under its own version, so the
  // versions continue as in the run that saved it.
  // RunRlLoop's first push of an adapter takes one more version, so a
  // LoRA run's adapter goes one below the saved one here.
  version = std::max(version + 1, st.policy_version - (lora ? 1 : 0));
  ASSIGN_OR_RETURN(SyncReport r,
                   PushPolicy(*sampler.rollouts, learner, version));
  json line = SyncJson(r);
  line["phase"] = "resumed";
  line["from"] = saved.path.string();
  line["step"] = st.step;
  out.Emit(line);
  return TrainingStart{st.step, version};
}

// Saves a training checkpoint after every --checkpoint_every steps.
Status SaveCheckpointIfDue(const DemoConfig& config, const Learner& learner,
                           const RlStepMetrics& m, JsonLines& out) {
  // Every replica holds the same state (the loop checks it), so rank 0
  // alone writes.
  if (config.checkpoint_every <= 0 || m.step % config.checkpoint_every != 0 ||
      config.rank != 0)
    return OkStatus();
  const auto start = SteadyClock::now();
  RETURN_IF_ERROR(SaveTrainingCheckpoint(
      config.checkpoint_dir, *learner.grpo, learner.model_config,
      {m.step, m.policy_version, config.loop.seed, config.loop.batch_size,
       config.loop.num_generations},
      config.checkpoint_keep));
  out.Emit({{"phase", "checkpoint_saved"},
            {"step", m.step},
            {"dir", config.checkpoint_dir},
            {"ms", MillisecondsSince(start)}});
  return OkStatus();
}

// One greedy answer from the final weights; returns the sampler's weight
// version.
StatusOr<uint64_t> ShowGreedyAnswer(const DemoConfig& config,
                                    const DatasetTask& task,
                                    RolloutBackend& rollouts,
                                    const Learner& learner, JsonLines& out) {
  const TaskExample& shown = task.example(0);
  GenerateRequest request;
  request.input_ids = task.prompt_ids(0);
  request.sampling.temperature = 0.0f;
  request.stop.max_new_tokens = config.loop.max_new_tokens;
  request.lora_name = learner.lora_name;
  ASSIGN_OR_RETURN(RequestHandle handle, rollouts.Submit(request));
  ASSIGN_OR_RETURN(GenerateResult result, handle.Wait());
  const SampleOutput& sample = result.samples[0];
  ASSIGN_OR_RETURN(uint64_t final_version, PolicyVersion(rollouts, learner));
  out.Emit({{"phase", "generate_result"},
            {"question", shown.prompt},
            {"gold_answer", shown.gold},
            {"text", sample.text},
            {"output_ids", sample.token_ids},
            {"meta_info",
             {{"id", result.id},
              {"prompt_tokens", result.prompt_tokens},
              {"completion_tokens", result.completion_tokens},
              {"finish_reason", FinishReasonName(sample.finish_reason)},
              {"e2e_latency", result.e2e_seconds},
              {"weight_version", sample.weight_versions.empty()
                                     ? final_version
                                     : sample.weight_versions.back()}}}});
  return final_version;
}

// The final policy as a Hugging Face checkpoint in --save_dir, with the
// tokenizer, so the directory is a complete checkpoint.
Status SavePolicy(const DemoConfig& config, const Learner& learner) {
  if (config.save_dir.empty() || config.rank != 0) return OkStatus();
  if (learner.grpo->adapter() != nullptr) {
    // A PEFT adapter directory (adapter_config.json and
    // adapter_model.safetensors) over the base it was trained on.
    RETURN_IF_ERROR(SavePeftAdapter(config.save_dir, *learner.grpo->adapter()));
  } else {
    RETURN_IF_ERROR(
        learner.grpo->WithMasterWeights([&](const ParamLeaves& master) {
          return SaveCheckpoint(master, learner.model_config, config.save_dir);
        }));
  }
  // chat_template.jinja, where the tokenizer keeps its template apart.
  for (const char* name :
       {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}) {
    const std::filesystem::path from =
        std::filesystem::path(config.tokenizer_dir) / name;
    std::error_code error;
    if (std::filesystem::exists(from))
      std::filesystem::copy_file(
          from, std::filesystem::path(config.save_dir) / name,
          std::filesystem::copy_options::overwrite_existing, error);
    if (error)
      return InternalError("copying " + from.string() + ": " + error.message());
  }
  return OkStatus();
}

// --plot: the picture, redrawn after every step and evaluation. A failed
// drawing is reported and the run goes on.
void Redraw(const DemoConfig& config, const JsonLines& out) {
  if (config.plot.empty() || config.rank != 0) return;
  const Status drawn = PlotMetrics(out.recorded(), config.plot);
  if (!drawn.ok()) LOG(WARNING) << "--plot: " << drawn;
}

json SummaryJson(const DemoConfig& config, const Tasks& tasks,
                 const Sampler& sampler, const LoopResult& result,
                 uint64_t final_version) {
  const RlRunSummary& summary = result.summary;
  json line = {
      {"phase", "summary"},
      {"steps", summary.steps},
      {"seconds", summary.seconds},
      {"mean_step_seconds", result.step_seconds / summary.steps},
      {"rollout_seconds", summary.rollout_seconds},
      {"train_seconds", summary.train_seconds},
      {"wait_seconds", summary.wait_seconds},
      {"sync_seconds", summary.sync_seconds},
      {"first_reward_mean", summary.first_reward_mean},
      {"last_reward_mean", summary.last_reward_mean},
      {"sampler_weight_version", final_version},
      {"lora_rank", config.learner.lora ? config.learner.lora->rank : 0},
      {"stopped_early", summary.stopped_early},
      {"questions_skipped_too_long", tasks.train->skipped()}};
  if (sampler.engine) {
    const EngineStats stats = sampler.engine->Stats();
    line["updates_applied"] = stats.updates_applied;
    line["updates_refused"] = stats.updates_refused;
    line["max_update_stall_ms"] = stats.max_update_stall_ms;
  }
  if (sampler.remote != nullptr) {
    const RolloutClient& client = sampler.remote->client();
    line["client_retries"] = client.retries();
    line["client_stale_replies"] = client.stale_replies();
    line["client_catch_ups"] = client.catch_ups();
  }
  if (stop_signal != 0) line["stop_signal"] = static_cast<int>(stop_signal);
  if (result.final_eval_accuracy)
    line["final_eval_accuracy"] = *result.final_eval_accuracy;
  if (!config.save_dir.empty()) line["saved_to"] = config.save_dir;
  return line;
}

}  // namespace

void JsonLines::Emit(const json& line) {
  if (record_ && !quiet_) recorded_.push_back(line);
  EmitText(JsonLine(line));
}

void JsonLines::EmitText(const std::string& line) {
  if (quiet_) return;
  auto print = [&] { std::cout << line << std::endl; };
  if (progress_ != nullptr) {
    progress_->Print(print);
  } else {
    print();
  }
  if (file_ != nullptr) *file_ << line << std::endl;
}

void InstallStopHandlers() {
  std::signal(SIGTERM, RequestStop);
  std::signal(SIGINT, RequestStop);
}

StatusOr<Meshes> CreateMeshes(const DemoConfig& config, JsonLines& out) {
  ASSIGN_OR_RETURN(std::vector<Device> devices,
                   DiscoverLocalDevices(config.num_virtual_devices));
  Meshes meshes;
  if (config.remote_rollouts) {  // Every local device trains.
    ASSIGN_OR_RETURN(meshes.actor_only, Mesh::Create("actor", devices));
    meshes.actor = meshes.reference = meshes.actor_only.get();
    out.Emit({{"phase", "partition"},
              {"devices", devices.size()},
              {"meshes", "actor=all (rollouts are remote)"}});
    return meshes;
  }
  ASSIGN_OR_RETURN(meshes.partition,
                   Partition::Create(config.partition, devices));
  meshes.actor = &meshes.partition->actor();
  meshes.reference = &meshes.partition->reference();
  meshes.rollout = &meshes.partition->rollout();
  out.Emit({{"phase", "partition"},
            {"devices", devices.size()},
            {"meshes", meshes.partition->ToString()},
            {"ranks", config.num_ranks}});
  return meshes;
}

StatusOr<TaskData> LoadTaskData(const DemoConfig& config) {
  TaskData data;
  ASSIGN_OR_RETURN(data.train,
                   LoadJsonlDataset(config.train_file, config.fields));
  if (config.eval_every > 0 && !config.eval_file.empty()) {
    ASSIGN_OR_RETURN(data.test,
                     LoadJsonlDataset(config.eval_file, config.fields));
  }
  return data;
}

StatusOr<Sampler> StartSampler(const DemoConfig& config, const Meshes& meshes,
                               JsonLines& out) {
  ASSIGN_OR_RETURN(Sampler sampler,
                   config.remote_rollouts
                       ? StartRemoteSampler(config, meshes, out)
                       : StartLocalSampler(config, meshes, out));
  if (sampler.tok() == nullptr)
    return InvalidArgumentError("GSM8K needs a tokenizer (--tokenizer_dir)");
  return sampler;
}

// The learner of one process (one replica of a distributed run).
static StatusOr<Learner> CreateReplica(const DemoConfig& config,
                                       const Meshes& meshes,
                                       const Sampler& sampler) {
  GrpoOptions options = config.learner;
  options.sample_vocab = sampler.rollouts->vocab_size();
  Learner learner;
  if (options.lora) {
    // The base the in-process engine already reads; remote servers hold
    // their own copy, so the learner loads one.
    learner.base = sampler.shared_base;
    if (learner.base == nullptr) {
      ASSIGN_OR_RETURN(LoadedModel base,
                       LoadModel(config.trainer_model, meshes.actor));
      learner.base = std::make_shared<const LoadedModel>(std::move(base));
    }
    learner.model_config = learner.base->config;
    learner.lora_name = config.loop.lora_name;
    ASSIGN_OR_RETURN(
        learner.grpo,
        GrpoLearner::Create(learner.base->config, learner.base->weights,
                            meshes.actor, meshes.reference, options));
    return learner;
  }
  // The loaded weights are freed once the learner has its own copy.
  ASSIGN_OR_RETURN(LoadedModel initial,
                   LoadModel(config.trainer_model, meshes.actor));
  learner.model_config = initial.config;
  ASSIGN_OR_RETURN(learner.grpo, GrpoLearner::Create(
                                     initial.config, initial.weights,
                                     meshes.actor, meshes.reference, options));
  return learner;
}

StatusOr<Learner> CreateLearner(const DemoConfig& config, const Meshes& meshes,
                                const Sampler& sampler,
                                DataParallelGroup* group) {
  ASSIGN_OR_RETURN(Learner learner, CreateReplica(config, meshes, sampler));
  learner.grpo->set_data_parallel(group);
  return learner;
}

StatusOr<TrainingStart> ResumeOrSwap(const DemoConfig& config,
                                     const Meshes& meshes, Sampler& sampler,
                                     Learner& learner, JsonLines& out) {
  RolloutBackend& rollouts = *sampler.rollouts;
  if (learner.grpo->adapter() != nullptr) {
    // The base is shared in process; remote servers must hold the very
    // base the adapter is trained on, or their logprobs would not be the
    // trainer's. The adapter starts as PEFT's (the base exactly) and
    // becomes resident with its first push.
    if (sampler.remote != nullptr) {
      const std::string want = HexU64(ContentHash(learner.base->weights));
      for (const ServerResult& r : sampler.remote->client().Checksums()) {
        RETURN_IF_ERROR(r.status);
        if (r.reply.value("content_hash", std::string()) != want)
          return FailedPreconditionError(
              r.url + " serves a base with content hash " +
              r.reply.value("content_hash", std::string("?")) +
              ", not the trainer's " + want +
              ": start it from the same --model_dir (or --preset and "
              "--seed) for LoRA training");
      }
    }
    ASSIGN_OR_RETURN(uint64_t version, PolicyVersion(rollouts, learner));
    if (config.resume)
      return Resume(config, meshes, version, sampler, learner, out);
    ASSIGN_OR_RETURN(SyncReport r, PushPolicy(rollouts, learner, ++version));
    out.Emit(SwapJson(r, "lora_init"));
    return TrainingStart{0, version};
  }
  ASSIGN_OR_RETURN(uint64_t version, rollouts.NewestWeightVersion());
  if (config.resume)
    return Resume(config, meshes, version, sampler, learner, out);
  const bool from_checkpoint = config.trainer_model.load_format != "dummy";
  if (from_checkpoint || !sampler.engine) {
    // A checkpoint is pushed into the sampler's dummy weights; remote
    // servers hold weights we do not know, so they always get the
    // trainer's.
    ASSIGN_OR_RETURN(SyncReport r,
                     rollouts.PushWeights(learner.grpo->weights(), ++version));
    out.Emit(SwapJson(
        r, from_checkpoint ? config.trainer_model.model_dir : "dummy"));
    return TrainingStart{0, version};
  }
  // Same seed, same dummy weights: nothing to push, but prove it.
  ASSIGN_OR_RETURN(LeafChecksums sums, sampler.engine->WeightsChecksum());
  if (sums.content_hash != ContentHash(learner.grpo->weights()))
    return DataLossError("trainer and sampler dummy weights differ");
  return TrainingStart{0, version};
}

StatusOr<Tasks> CreateTasks(const DemoConfig& config, TaskData data,
                            const Sampler& sampler, const Learner& learner) {
  Tasks tasks;
  DatasetTaskOptions train_options = config.task;
  train_options.model_type =
      std::string(ModelTypeName(learner.model_config.model_type));
  ASSIGN_OR_RETURN(tasks.train,
                   DatasetTask::Create(std::move(data.train), *sampler.tok(),
                                       train_options));
  if (!config.reward_service.url.empty()) {
    ASSIGN_OR_RETURN(std::unique_ptr<RewardService> service,
                     RewardService::Create(config.reward_service));
    tasks.remote = std::make_unique<RemoteRewardTask>(
        tasks.train.get(), std::move(service), config.reward_url_weight);
  }
  if (!data.test.empty()) {
    DatasetTaskOptions eval_options = train_options;
    eval_options.seed = 0;  // The same questions every evaluation.
    ASSIGN_OR_RETURN(tasks.eval,
                     DatasetTask::Create(std::move(data.test), *sampler.tok(),
                                         eval_options));
  }
  return tasks;
}

Status WarmStartSft(const DemoConfig& config, const TrainingStart& start,
                    const Tasks& tasks, Sampler& sampler, Learner& learner,
                    JsonLines& out) {
  if (config.resume || config.sft_steps == 0) return OkStatus();
  // Each rank trains on its share of every SFT batch.
  ASSIGN_OR_RETURN(RankShare share,
                   ShareOf(config.sft_batch_size, config.rank, config.num_ranks,
                           "--sft_batch_size"));
  for (int s = 0; s < config.sft_steps; ++s) {
    const std::vector<SftExample> batch =
        tasks.train->SftBatch(int64_t{s} * config.sft_batch_size + share.begin,
                              share.end - share.begin);
    ASSIGN_OR_RETURN(SftStepMetrics m,
                     learner.grpo->SftStep(batch, config.sft_learning_rate));
    out.Emit(SftStepJson(s + 1, m));
  }
  // GRPO's KL then keeps the policy near the warm-started model, as when it
  // starts from an SFT checkpoint. A LoRA run keeps its base as reference.
  if (learner.grpo->adapter() == nullptr) {
    RETURN_IF_ERROR(learner.grpo->SetReference(learner.grpo->weights()));
  }
  ASSIGN_OR_RETURN(SyncReport r, PushPolicy(*sampler.rollouts, learner,
                                            start.weight_version + 1));
  out.Emit(SwapJson(r, "sft"));
  return OkStatus();
}

StatusOr<LoopResult> RunGrpoLoop(const DemoConfig& config,
                                 const TrainingStart& start, const Tasks& tasks,
                                 Sampler& sampler, Learner& learner,
                                 JsonLines& out) {
  RolloutBackend& rollouts = *sampler.rollouts;
  LoopResult result;
  auto evaluate = [&](int64_t step) -> Status {
    ASSIGN_OR_RETURN(TaskEvalResult r,
                     EvaluateTask(rollouts, *tasks.eval, config.eval_examples,
                                  config.loop.max_new_tokens, learner.lora_name,
                                  learner.grpo->data_parallel()));
    result.final_eval_accuracy = r.accuracy;
    out.Emit(EvalJson(step, r));
    if (step > 0) Redraw(config, out);
    return OkStatus();
  };
  if (config.eval_every > 0 && !config.resume) RETURN_IF_ERROR(evaluate(0));

  RlLoopOptions loop = config.loop;
  loop.first_step = start.first_step;
  const auto loop_start = SteadyClock::now();
  loop.stop_requested = [&config, loop_start] {
    return stop_signal != 0 || (config.max_seconds > 0 &&
                                SecondsSince(loop_start) >= config.max_seconds);
  };
  // Rank 0 shows where the run is on stderr; its JSON lines print through
  // the progress line, which clears itself first.
  std::optional<ProgressLine> progress;
  if (config.progress && config.rank == 0) {
    progress.emplace(&std::cerr, isatty(STDERR_FILENO) == 1,
                     config.progress_every_s);
    out.set_progress(&*progress);
    loop.on_progress = [&progress](const RlProgress& p) {
      progress->Update(p);
    };
  }
  struct Detach {
    JsonLines& out;
    ~Detach() { out.set_progress(nullptr); }
  } detach{out};
  ASSIGN_OR_RETURN(
      result.summary,
      RunRlLoop(rollouts, *learner.grpo, tasks.rl(), loop,
                [&](const RlStepMetrics& m) -> Status {
                  out.Emit(RlStepJson(m));
                  Redraw(config, out);
                  result.step_seconds += m.step_seconds;
                  RETURN_IF_ERROR(SaveCheckpointIfDue(config, learner, m, out));
                  const bool faulty = config.debug_fault_rank < 0 ||
                                      config.debug_fault_rank == config.rank;
                  if (faulty && m.step == config.debug_sigkill_after_step)
                    raise(SIGKILL);
                  if (faulty && m.step == config.debug_hang_after_step)
                    raise(SIGSTOP);
                  if (config.eval_every > 0 && m.step % config.eval_every == 0)
                    return evaluate(m.step);
                  return OkStatus();
                }));
  return result;
}

Status Report(const DemoConfig& config, const Tasks& tasks,
              const Sampler& sampler, const Learner& learner,
              const LoopResult& result, JsonLines& out) {
  ASSIGN_OR_RETURN(
      uint64_t final_version,
      ShowGreedyAnswer(config, *tasks.train, *sampler.rollouts, learner, out));
  RETURN_IF_ERROR(SavePolicy(config, learner));
  out.Emit(SummaryJson(config, tasks, sampler, result, final_version));
  return OkStatus();
}

}  // namespace rlrt
