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
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "base/timing.h"
#include "examples/cli_support.h"
#include "examples/learner_flags.h"
#include "models/forward/model_source.h"
#include "models/io/checkpoint.h"
#include "models/leaf_checksum.h"
#include "models/tokenizer/tokenizer.h"
#include "partition/device.h"
#include "partition/partition_spec.h"
#include "sampler/engine.h"
#include "trainer_bridge/grpo_learner.h"
#include "trainer_bridge/remote/remote_rollouts.h"
#include "trainer_bridge/rl_loop.h"
#include "trainer_bridge/rl_metrics_json.h"
#include "trainer_bridge/tasks/gsm8k_task.h"
#include "trainer_bridge/train_checkpoint.h"
#include "trainer_bridge/weight_sync.h"

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
DEFINE_string(gsm8k_dir, RLRT_SHARED_DIR "/data/gsm8k",
              "Directory with GSM8K train.jsonl and test.jsonl.");
// Remote rollouts.
DEFINE_string(rollout_servers, "",
              "Comma-separated rollout server URLs (build/bin/rollout_server): "
              "sample through them and push weights with "
              "/admin/update_params instead of an in-process engine.");
DEFINE_string(admin_token, "", "Bearer token for the servers' admin API.");
// Devices.
DEFINE_string(partition, "",
              "e.g. 'rollout=1,actor=rest' or "
              "'rollout=1,actor=1,reference=rest'; empty: half each.");
DEFINE_int32(num_virtual_devices, 0, "Use N virtual devices (testing).");
// Rollout.
DEFINE_int32(batch_size, 4, "Prompts per step.");
DEFINE_int32(num_generations, 4, "Completions per prompt (G).");
DEFINE_int32(max_prompt_length, 256,
             "Questions whose prompt is longer are skipped.");
DEFINE_int32(max_new_tokens, 64, "Completion length limit.");
DEFINE_bool(enable_thinking, false,
            "Let Qwen3 think first (long completions); false renders the "
            "empty think block.");
DEFINE_int32(max_staleness, 1,
             "Batches sampled ahead of training (0: serial, on-policy).");
DEFINE_int32(sync_every, 1, "Push weights to the sampler every k steps.");
DEFINE_int64(max_total_tokens, 0,
             "Engine KV capacity in tokens; 0: enough for the batches in "
             "flight and the evaluation.");
// Learning.
DEFINE_int32(steps, 10, "GRPO steps.");
DEFINE_int64(max_micro_batch_tokens, 0,
             "Training micro-batch size in tokens (gradients accumulate "
             "over micro-batches); 0: the whole batch, up to 8192.");
DEFINE_int32(sft_steps, 0,
             "Supervised warm-start steps on GSM8K's worked answers before "
             "GRPO.");
DEFINE_int32(sft_batch_size, 4, "Examples per SFT step.");
// Rewards.
DEFINE_double(reward_strict_format, 0.25, "Weight: last line '#### N'.");
DEFINE_double(reward_lenient_format, 0.25, "Weight: '#### N' anywhere.");
DEFINE_double(reward_correctness, 2.0, "Weight: exact answer.");
DEFINE_double(reward_close_answer, 0.5, "Weight: numerically close answer.");
// Evaluation and output.
DEFINE_int32(eval_every, 5,
             "Greedy accuracy on --eval_examples test questions every N "
             "steps (and before the first); 0: off.");
DEFINE_int32(eval_examples, 16, "Test questions per evaluation.");
DEFINE_uint64(seed, 0, "Seed of dummy weights, data order and sampling.");
DEFINE_string(metrics_out, "", "Also append every JSON line to this file.");
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
DEFINE_string(save_dir, "",
              "Write the final policy here as a Hugging Face checkpoint.");

namespace rlrt {
namespace {

using nlohmann::json;

std::ofstream* metrics_file = nullptr;
volatile std::sig_atomic_t stop_signal = 0;

extern "C" void RequestStop(int signal) { stop_signal = signal; }

void Emit(const json& line) {
  const std::string text = JsonLine(line);
  std::cout << text << std::endl;
  if (metrics_file != nullptr) *metrics_file << text << std::endl;
}

std::string TokenizerDir() {
  return ResolveTokenizerDir(FLAGS_tokenizer_dir, FLAGS_model_dir);
}

Status CheckFlags() {
  if (FLAGS_steps < 1) return InvalidArgumentError("--steps must be >= 1");
  if (FLAGS_batch_size < 1)
    return InvalidArgumentError("--batch_size must be >= 1");
  if (FLAGS_num_generations < 2)
    return InvalidArgumentError("--num_generations must be >= 2");
  if (FLAGS_max_prompt_length < 1 || FLAGS_max_new_tokens < 1)
    return InvalidArgumentError(
        "--max_prompt_length and --max_new_tokens must be >= 1");
  if (FLAGS_eval_every < 0 || FLAGS_eval_examples < 1)
    return InvalidArgumentError(
        "--eval_every must be >= 0 and --eval_examples >= 1");
  if (FLAGS_sft_steps < 0 || FLAGS_sft_batch_size < 1)
    return InvalidArgumentError(
        "--sft_steps must be >= 0 and --sft_batch_size >= 1");
  if (FLAGS_checkpoint_every < 0 || FLAGS_checkpoint_keep < 0)
    return InvalidArgumentError(
        "--checkpoint_every and --checkpoint_keep must be >= 0");
  if (!(FLAGS_max_seconds >= 0))
    return InvalidArgumentError("--max_seconds must be >= 0");
  if ((FLAGS_checkpoint_every > 0 || FLAGS_resume) &&
      FLAGS_checkpoint_dir.empty())
    return InvalidArgumentError(
        "--checkpoint_every and --resume need --checkpoint_dir");
  if (FLAGS_load_format.empty())
    FLAGS_load_format = FLAGS_model_dir.empty() ? "dummy" : "safetensors";
  if (FLAGS_load_format != "dummy" && FLAGS_load_format != "safetensors")
    return InvalidArgumentError("--load_format must be safetensors or dummy");
  if (FLAGS_model_dir.empty() && FLAGS_load_format != "dummy")
    return InvalidArgumentError(
        "--preset needs --load_format=dummy (or give --model_dir)");
  return OkStatus();
}

StatusOr<GrpoOptions> LearnerOptions() {
  ASSIGN_OR_RETURN(GrpoOptions g, GrpoOptionsFromFlags());
  g.loss.constant_normalizer = FLAGS_max_new_tokens;
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
  return g;
}

json EvalJson(int64_t step, const Gsm8kEvalResult& r) {
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

// The sampler side: an in-process engine on the rollout mesh, or remote
// rollout servers. Either way a RolloutBackend and a tokenizer.
struct Sampler {
  std::unique_ptr<SamplerEngine> engine;  // In-process only.
  std::unique_ptr<Tokenizer> tokenizer;   // Remote only (engine's otherwise).
  std::unique_ptr<RolloutBackend> rollouts;
  RemoteRollouts* remote = nullptr;  // rollouts, when remote.
  const Tokenizer* tok() const {
    return engine ? engine->tokenizer() : tokenizer.get();
  }
};

StatusOr<Sampler> StartSampler(Mesh* rollout_mesh, Mesh* actor_mesh) {
  Sampler sampler;
  if (!FLAGS_rollout_servers.empty()) {
    RolloutClientOptions client;
    std::stringstream list(FLAGS_rollout_servers);
    for (std::string url; std::getline(list, url, ',');)
      if (!url.empty()) client.urls.push_back(url);
    client.admin_token = FLAGS_admin_token;
    ASSIGN_OR_RETURN(std::unique_ptr<RemoteRollouts> remote,
                     RemoteRollouts::Create(client, actor_mesh));
    ASSIGN_OR_RETURN(uint64_t version, remote->WeightVersion());
    Emit({{"phase", "rollout_servers"},
          {"urls", client.urls},
          {"vocab_size", remote->vocab_size()},
          {"weight_version", version}});
    sampler.remote = remote.get();
    sampler.rollouts = std::move(remote);
    ASSIGN_OR_RETURN(sampler.tokenizer, LoadTokenizer(TokenizerDir()));
    return sampler;
  }
  // The in-process sampler starts with dummy weights of the model's
  // structure.
  const int64_t in_flight = int64_t{FLAGS_batch_size} * FLAGS_num_generations *
                            (FLAGS_max_staleness + 1);
  const int64_t eval_requests = FLAGS_eval_every > 0 ? FLAGS_eval_examples : 0;
  const int64_t sequence = FLAGS_max_prompt_length + FLAGS_max_new_tokens;
  EngineOptions o;
  o.model.model_dir = FLAGS_model_dir;
  o.model.preset = FLAGS_model_dir.empty() ? FLAGS_preset : "";
  o.model.load_format = "dummy";
  o.model.seed = FLAGS_seed;
  o.tokenizer_dir = TokenizerDir();
  o.max_running_requests = static_cast<int32_t>(in_flight + eval_requests);
  o.max_total_tokens = FLAGS_max_total_tokens > 0
                           ? FLAGS_max_total_tokens
                           : (in_flight + eval_requests) * sequence;
  o.context_length = sequence;
  ASSIGN_OR_RETURN(sampler.engine, SamplerEngine::Create(o, rollout_mesh));
  std::cout << sampler.engine->ready_line() << std::endl;
  if (metrics_file != nullptr)
    *metrics_file << sampler.engine->ready_line() << "\n";
  sampler.rollouts =
      std::make_unique<LocalRollouts>(sampler.engine.get(), actor_mesh);
  return sampler;
}

Status Run() {
  RETURN_IF_ERROR(CheckFlags());
  ASSIGN_OR_RETURN(GrpoOptions learner_options, LearnerOptions());
  ASSIGN_OR_RETURN(std::vector<Device> devices,
                   DiscoverLocalDevices(FLAGS_num_virtual_devices));
  // With remote rollouts every local device trains.
  const std::string spec =
      FLAGS_rollout_servers.empty() || !FLAGS_partition.empty()
          ? FLAGS_partition
          : "";
  std::unique_ptr<Mesh> actor_only;
  std::optional<Partition> partition;
  Mesh* actor = nullptr;
  Mesh* reference = nullptr;
  Mesh* rollout = nullptr;
  if (FLAGS_rollout_servers.empty()) {
    ASSIGN_OR_RETURN(partition, Partition::Create(spec, devices));
    actor = &partition->actor();
    reference = &partition->reference();
    rollout = &partition->rollout();
    Emit({{"phase", "partition"},
          {"devices", devices.size()},
          {"meshes", partition->ToString()}});
  } else {
    ASSIGN_OR_RETURN(actor_only, Mesh::Create("actor", devices));
    actor = reference = actor_only.get();
    Emit({{"phase", "partition"},
          {"devices", devices.size()},
          {"meshes", "actor=all (rollouts are remote)"}});
  }

  // Data first: a missing file should fail before anything heavy starts.
  ASSIGN_OR_RETURN(std::vector<Gsm8kExample> train,
                   LoadGsm8k(FLAGS_gsm8k_dir + "/train.jsonl"));
  std::vector<Gsm8kExample> test;
  if (FLAGS_eval_every > 0) {
    ASSIGN_OR_RETURN(test, LoadGsm8k(FLAGS_gsm8k_dir + "/test.jsonl"));
  }

  ASSIGN_OR_RETURN(Sampler sampler, StartSampler(rollout, actor));
  RolloutBackend& rollouts = *sampler.rollouts;
  if (sampler.tok() == nullptr)
    return InvalidArgumentError("GSM8K needs a tokenizer (--tokenizer_dir)");

  // The trainer: the checkpoint (or dummy weights) on the actor mesh.
  ModelSource trainer_source;
  trainer_source.model_dir = FLAGS_model_dir;
  trainer_source.preset = FLAGS_model_dir.empty() ? FLAGS_preset : "";
  trainer_source.load_format = FLAGS_load_format;
  trainer_source.seed = FLAGS_seed;
  const bool from_checkpoint = FLAGS_load_format != "dummy";
  learner_options.sample_vocab = rollouts.vocab_size();
  ModelConfig config;
  std::unique_ptr<GrpoLearner> learner;
  {  // The loaded weights are freed once the learner has its own copy.
    ASSIGN_OR_RETURN(LoadedModel initial, LoadModel(trainer_source, actor));
    config = initial.config;
    ASSIGN_OR_RETURN(learner,
                     GrpoLearner::Create(initial.config, initial.weights, actor,
                                         reference, learner_options));
  }
  ASSIGN_OR_RETURN(uint64_t version, rollouts.NewestWeightVersion());
  int64_t first_step = 0;
  if (FLAGS_resume) {
    ASSIGN_OR_RETURN(LoadedTrainingCheckpoint saved,
                     LoadLatestTrainingCheckpoint(FLAGS_checkpoint_dir, actor));
    const TrainingState& st = saved.state;
    if (st.seed != FLAGS_seed || st.batch_size != FLAGS_batch_size ||
        st.num_generations != FLAGS_num_generations)
      return InvalidArgumentError(
          "the checkpoint in " + saved.path.string() +
          " was made with --seed=" + std::to_string(st.seed) +
          " --batch_size=" + std::to_string(st.batch_size) +
          " --num_generations=" + std::to_string(st.num_generations) +
          "; resume with the same flags");
    if (st.step >= FLAGS_steps)
      return InvalidArgumentError(
          "the checkpoint is at step " + std::to_string(st.step) +
          ", nothing left of --steps=" + std::to_string(FLAGS_steps));
    RETURN_IF_ERROR(learner->RestoreState(saved.weights, saved.first_moment,
                                          saved.second_moment,
                                          saved.optimizer_steps));
    first_step = st.step;
    // The restored policy goes to the sampler under its own version, so the
    // versions continue as in the run that saved it.
    version = std::max(version + 1, st.policy_version);
    ASSIGN_OR_RETURN(SyncReport r,
                     rollouts.PushWeights(learner->weights(), version));
    json line = SyncJson(r);
    line["phase"] = "resumed";
    line["from"] = saved.path.string();
    line["step"] = first_step;
    Emit(line);
  } else if (from_checkpoint || !sampler.engine) {
    // A checkpoint is pushed into the sampler's dummy weights; remote
    // servers hold weights we do not know, so they always get the
    // trainer's.
    ASSIGN_OR_RETURN(SyncReport r,
                     rollouts.PushWeights(learner->weights(), ++version));
    json line = SyncJson(r);
    line["phase"] = "weights_swapped";
    line["source"] = from_checkpoint ? FLAGS_model_dir : "dummy";
    line["match"] = true;  // PushWeights verified the sampler's hash.
    Emit(line);
  } else {
    // Same seed, same dummy weights: nothing to push, but prove it.
    ASSIGN_OR_RETURN(LeafChecksums sums, sampler.engine->WeightsChecksum());
    if (sums.content_hash != ContentHash(learner->weights()))
      return DataLossError("trainer and sampler dummy weights differ");
  }

  Gsm8kTaskOptions task_options;
  task_options.max_prompt_length = FLAGS_max_prompt_length;
  task_options.weights = {FLAGS_reward_strict_format,
                          FLAGS_reward_lenient_format, FLAGS_reward_correctness,
                          FLAGS_reward_close_answer};
  task_options.seed = FLAGS_seed;
  task_options.enable_thinking = FLAGS_enable_thinking;
  ASSIGN_OR_RETURN(
      std::unique_ptr<Gsm8kTask> task,
      Gsm8kTask::Create(std::move(train), *sampler.tok(), task_options));
  std::unique_ptr<Gsm8kTask> eval_task;
  if (FLAGS_eval_every > 0) {
    Gsm8kTaskOptions eval_options = task_options;
    eval_options.seed = 0;  // The same questions every evaluation.
    ASSIGN_OR_RETURN(
        eval_task,
        Gsm8kTask::Create(std::move(test), *sampler.tok(), eval_options));
  }

  const int sft_steps = FLAGS_resume ? 0 : FLAGS_sft_steps;  // Done before.
  for (int s = 0; s < sft_steps; ++s) {
    const std::vector<SftExample> batch =
        task->SftBatch(int64_t{s} * FLAGS_sft_batch_size, FLAGS_sft_batch_size);
    ASSIGN_OR_RETURN(SftStepMetrics m, learner->SftStep(batch));
    Emit(SftStepJson(s + 1, m));
  }
  if (sft_steps > 0) {
    ASSIGN_OR_RETURN(SyncReport r,
                     rollouts.PushWeights(learner->weights(), ++version));
    json line = SyncJson(r);
    line["phase"] = "weights_swapped";
    line["source"] = "sft";
    line["match"] = true;
    Emit(line);
  }

  double last_accuracy = -1;
  auto evaluate = [&](int64_t step) -> Status {
    ASSIGN_OR_RETURN(Gsm8kEvalResult r,
                     EvaluateGsm8k(rollouts, *eval_task, FLAGS_eval_examples,
                                   FLAGS_max_new_tokens));
    last_accuracy = r.accuracy;
    Emit(EvalJson(step, r));
    return OkStatus();
  };
  if (FLAGS_eval_every > 0 && !FLAGS_resume) RETURN_IF_ERROR(evaluate(0));

  RlLoopOptions loop;
  loop.steps = FLAGS_steps;
  loop.first_step = first_step;
  loop.batch_size = FLAGS_batch_size;
  loop.num_generations = FLAGS_num_generations;
  loop.max_new_tokens = FLAGS_max_new_tokens;
  loop.temperature = static_cast<float>(FLAGS_temperature);
  loop.max_staleness = FLAGS_max_staleness;
  loop.sync_every = FLAGS_sync_every;
  loop.seed = FLAGS_seed;
  const auto loop_start = SteadyClock::now();
  loop.stop_requested = [&] {
    return stop_signal != 0 || (FLAGS_max_seconds > 0 &&
                                SecondsSince(loop_start) >= FLAGS_max_seconds);
  };
  double step_seconds = 0;
  ASSIGN_OR_RETURN(
      RlRunSummary summary,
      RunRlLoop(rollouts, *learner, *task, loop,
                [&](const RlStepMetrics& m) -> Status {
                  Emit(RlStepJson(m));
                  step_seconds += m.step_seconds;
                  if (FLAGS_checkpoint_every > 0 &&
                      m.step % FLAGS_checkpoint_every == 0) {
                    const auto start = SteadyClock::now();
                    RETURN_IF_ERROR(SaveTrainingCheckpoint(
                        FLAGS_checkpoint_dir, *learner, config,
                        {m.step, m.policy_version, FLAGS_seed, FLAGS_batch_size,
                         FLAGS_num_generations},
                        FLAGS_checkpoint_keep));
                    Emit({{"phase", "checkpoint_saved"},
                          {"step", m.step},
                          {"dir", FLAGS_checkpoint_dir},
                          {"ms", MillisecondsSince(start)}});
                  }
                  if (m.step == FLAGS_debug_sigkill_after_step) raise(SIGKILL);
                  if (FLAGS_eval_every > 0 && m.step % FLAGS_eval_every == 0)
                    return evaluate(m.step);
                  return OkStatus();
                }));

  // One greedy answer from the final weights.
  const Gsm8kExample& shown = task->example(0);
  GenerateRequest request;
  request.input_ids = task->prompt_ids(0);
  request.sampling.temperature = 0.0f;
  request.stop.max_new_tokens = FLAGS_max_new_tokens;
  ASSIGN_OR_RETURN(RequestHandle handle, rollouts.Submit(request));
  ASSIGN_OR_RETURN(GenerateResult result, handle.Wait());
  const SampleOutput& out = result.samples[0];
  ASSIGN_OR_RETURN(uint64_t final_version, rollouts.WeightVersion());
  Emit({{"phase", "generate_result"},
        {"question", shown.question},
        {"gold_answer", shown.final_answer},
        {"text", out.text},
        {"output_ids", out.token_ids},
        {"meta_info",
         {{"id", result.id},
          {"prompt_tokens", result.prompt_tokens},
          {"completion_tokens", result.completion_tokens},
          {"finish_reason", FinishReasonName(out.finish_reason)},
          {"e2e_latency", result.e2e_seconds},
          {"weight_version", out.weight_versions.empty()
                                 ? final_version
                                 : out.weight_versions.back()}}}});

  if (!FLAGS_save_dir.empty()) {
    RETURN_IF_ERROR(SaveCheckpoint(learner->weights(), config, FLAGS_save_dir));
    // Copy the tokenizer too, so the directory is a complete checkpoint.
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
      const std::filesystem::path from =
          std::filesystem::path(TokenizerDir()) / name;
      std::error_code error;
      if (std::filesystem::exists(from))
        std::filesystem::copy_file(
            from, std::filesystem::path(FLAGS_save_dir) / name,
            std::filesystem::copy_options::overwrite_existing, error);
      if (error)
        return InternalError("copying " + from.string() + ": " +
                             error.message());
    }
  }

  json line = {{"phase", "summary"},
               {"steps", summary.steps},
               {"seconds", summary.seconds},
               {"mean_step_seconds", step_seconds / summary.steps},
               {"rollout_seconds", summary.rollout_seconds},
               {"train_seconds", summary.train_seconds},
               {"wait_seconds", summary.wait_seconds},
               {"sync_seconds", summary.sync_seconds},
               {"first_reward_mean", summary.first_reward_mean},
               {"last_reward_mean", summary.last_reward_mean},
               {"sampler_weight_version", final_version},
               {"stopped_early", summary.stopped_early},
               {"questions_skipped_too_long", task->skipped()}};
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
  if (last_accuracy >= 0) line["final_eval_accuracy"] = last_accuracy;
  if (!FLAGS_save_dir.empty()) line["saved_to"] = FLAGS_save_dir;
  Emit(line);
  return OkStatus();
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "GRPO on GSM8K: rollouts on the rollout mesh, training on the actor "
      "mesh, weights pushed into the sampler in place after every step.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  rlrt::ReturnLargeBuffersToTheSystem();
  std::ofstream metrics;
  if (!FLAGS_metrics_out.empty()) {
    metrics.open(FLAGS_metrics_out, std::ios::app);
    if (!metrics) {
      std::cerr << "grpo_gsm8k_10steps: cannot open --metrics_out "
                << FLAGS_metrics_out << std::endl;
      return 1;
    }
    rlrt::metrics_file = &metrics;
  }
  std::signal(SIGTERM, rlrt::RequestStop);
  std::signal(SIGINT, rlrt::RequestStop);
  rlrt::Status status = rlrt::Run();
  if (!status.ok()) {
    std::cerr << "grpo_gsm8k_10steps: " << status << std::endl;
    return 1;
  }
  return 0;
}
