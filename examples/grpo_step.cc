// grpo_step: one GRPO optimizer step on logged rollouts, offline.
//
//   grpo_step --model_dir=DIR --rollouts=FILE.jsonl --out_dir=DIR2
//             [--dump_grads=FILE.safetensors]
//
// Rollouts file (JSON lines; blank lines are skipped, unknown fields
// ignored), one object per completion:
//   {"group": 0,                       integer: completions of one prompt
//    "prompt_ids": [..],               non-empty, ids in [0, vocab)
//    "completion_ids": [..],           non-empty, ids in [0, vocab)
//    "reward": 1.0,                    finite number
//    "behaviour_logprobs": [..],       the sampler's logprob of each
//                                      completion token (same length, <= 0)
//    "truncated": false}               optional (default false)
// Every group has the same size G >= 2 and one prompt. Groups are trained in
// the order of their first line, a group's completions in file order.
//
// Loads the model, validates the whole file (errors name FILE:LINE), runs
// GrpoLearner::Step once (--num_iterations optimizer steps), writes the
// updated checkpoint to --out_dir (plus the model's tokenizer files) and
// prints one JSON line, phase "grpo_step_offline". --dump_grads writes the
// gradients of the last optimizer step, before clipping, as safetensors
// named like the weights. On any error nothing is written and the exit code
// is 1.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/timing.h"
#include "examples/learner_flags.h"
#include "examples/model_flags.h"
#include "models/config/model_config.h"
#include "models/forward/model_source.h"
#include "models/io/checkpoint.h"
#include "models/io/safetensors.h"
#include "models/tokenizer/tokenizer.h"
#include "partition/device.h"
#include "partition/mesh.h"
#include "trainer_bridge/grpo_learner.h"

// Model and files.
DEFINE_string(model_dir, "", "Hugging Face checkpoint directory.");
DEFINE_string(preset, "", "Built-in preset instead of --model_dir (dummy).");
DEFINE_string(load_format, "auto", "auto, safetensors or dummy.");
DEFINE_uint64(seed, 0, "Seed of dummy weights.");
DEFINE_string(rollouts, "", "The rollouts, JSON lines (see above).");
DEFINE_string(out_dir, "", "Where the updated checkpoint is written.");
DEFINE_string(dump_grads, "",
              "Also write the step's gradients (before clipping) here as "
              "safetensors.");
DEFINE_int32(num_virtual_devices, 0, "Use N virtual devices (testing).");
DEFINE_int64(sample_vocab, 0,
             "Logprobs normalise over the first N ids, as the sampler did; "
             "0: the tokenizer's vocabulary when --model_dir has "
             "tokenizer.json (as the engine does), else the config's "
             "vocab_size.");
// Learning.
DEFINE_int64(max_completion_length, 0,
             "The generation limit that --loss_type=dr_grpo divides by; 0: "
             "the longest completion in the file.");
DEFINE_int64(max_micro_batch_tokens, 4096,
             "Tokens per micro-batch; each completion must fit in one.");

namespace rlrt {
namespace {

using nlohmann::json;

// One line of the rollouts file.
struct Rollout {
  int64_t line = 0;
  int64_t group = 0;
  Completion completion;
};

struct Batch {
  std::vector<Completion> completions;  // Groups of consecutive completions.
  int64_t groups = 0;
  int64_t group_size = 0;
  int64_t longest_completion = 0;
};

struct Limits {
  int64_t vocab = 0;       // Ids must be below this.
  int64_t max_tokens = 0;  // Prompt + completion, per line.
  int64_t max_positions = 0;
};

Status LineError(const std::string& file, int64_t line,
                 const std::string& what) {
  return InvalidArgumentError(file + ":" + std::to_string(line) + ": " + what);
}

// An array of token ids, each in [0, vocab).
StatusOr<std::vector<int32_t>> Ids(const json& object, const char* field,
                                   int64_t vocab) {
  const auto it = object.find(field);
  if (it == object.end())
    return InvalidArgumentError(std::string("missing \"") + field + "\"");
  if (!it->is_array() || it->empty())
    return InvalidArgumentError(std::string("\"") + field +
                                "\" must be a non-empty array of token ids");
  std::vector<int32_t> ids;
  for (size_t k = 0; k < it->size(); ++k) {
    const json& v = (*it)[k];
    const std::string at = std::string(field) + "[" + std::to_string(k) + "]";
    if (!v.is_number_integer())
      return InvalidArgumentError(at + " is not an integer: " + v.dump());
    const bool in_range =
        v.is_number_unsigned()
            ? v.get<uint64_t>() < uint64_t(vocab)
            : v.get<int64_t>() >= 0 && v.get<int64_t>() < vocab;
    if (!in_range)
      return InvalidArgumentError(at + " = " + v.dump() +
                                  " is outside the vocabulary [0, " +
                                  std::to_string(vocab) + ")");
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

StatusOr<Rollout> ParseRollout(const json& o, const Limits& limits) {
  if (!o.is_object()) return InvalidArgumentError("not a JSON object");
  Rollout r;
  const auto group = o.find("group");
  if (group == o.end() || !group->is_number_integer() ||
      (group->is_number_unsigned() &&
       group->get<uint64_t>() > uint64_t(INT64_MAX)))
    return InvalidArgumentError("\"group\" must be an integer");
  r.group = group->get<int64_t>();
  Completion& c = r.completion;
  ASSIGN_OR_RETURN(c.prompt, Ids(o, "prompt_ids", limits.vocab));
  ASSIGN_OR_RETURN(c.tokens, Ids(o, "completion_ids", limits.vocab));
  const int64_t length = c.prompt.size() + c.tokens.size();
  if (length > limits.max_tokens || length > limits.max_positions)
    return InvalidArgumentError(
        "prompt + completion is " + std::to_string(length) +
        " tokens; at most " +
        std::to_string(std::min(limits.max_tokens, limits.max_positions)) +
        " fit (--max_micro_batch_tokens, max_position_embeddings)");
  const auto reward = o.find("reward");
  if (reward == o.end() || !reward->is_number() ||
      !std::isfinite(reward->get<double>()))
    return InvalidArgumentError("\"reward\" must be a finite number");
  c.reward = reward->get<double>();
  const auto logprobs = o.find("behaviour_logprobs");
  if (logprobs == o.end() || !logprobs->is_array())
    return InvalidArgumentError("\"behaviour_logprobs\" must be an array");
  if (logprobs->size() != c.tokens.size())
    return InvalidArgumentError(
        "\"behaviour_logprobs\" has " + std::to_string(logprobs->size()) +
        " values for " + std::to_string(c.tokens.size()) +
        " completion tokens");
  for (size_t k = 0; k < logprobs->size(); ++k) {
    const json& v = (*logprobs)[k];
    // A logprob above 0 or infinite cannot come from a sampler: the line is
    // corrupt, and training on it would be silently wrong.
    if (!v.is_number() || !std::isfinite(v.get<double>()) ||
        v.get<double>() > 0)
      return InvalidArgumentError("behaviour_logprobs[" + std::to_string(k) +
                                  "] = " + v.dump() +
                                  " is not a finite logprob <= 0");
    c.behaviour_logprobs.push_back(v.get<float>());
  }
  const auto truncated = o.find("truncated");
  if (truncated != o.end()) {
    if (!truncated->is_boolean())
      return InvalidArgumentError("\"truncated\" must be true or false");
    c.truncated = truncated->get<bool>();
  }
  return r;
}

StatusOr<std::vector<Rollout>> ReadLines(const std::string& path,
                                         const Limits& limits) {
  std::ifstream in(path);
  if (!in)
    return NotFoundError(
        path + ": cannot open the rollouts file: " + std::strerror(errno));
  std::vector<Rollout> rollouts;
  std::string text;
  for (int64_t line = 1; std::getline(in, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    json object;
    try {
      object = json::parse(text);
    } catch (const json::exception& e) {
      return LineError(path, line, std::string("not valid JSON: ") + e.what());
    }
    StatusOr<Rollout> r = ParseRollout(object, limits);
    if (!r.ok())
      return LineError(path, line, std::string(r.status().message()));
    r->line = line;
    rollouts.push_back(*std::move(r));
  }
  if (in.bad()) return DataLossError(path + ": read error");
  if (rollouts.empty())
    return InvalidArgumentError(path + ": no completions (the file is empty)");
  return rollouts;
}

// Orders the rollouts group by group (groups by first appearance) and checks
// that the groups are equal in size, at least 2, and share their prompt.
StatusOr<Batch> GroupRollouts(const std::string& path,
                              std::vector<Rollout> rollouts) {
  std::vector<int64_t> order;  // Group ids by first appearance.
  std::map<int64_t, std::vector<Rollout*>> members;
  for (Rollout& r : rollouts) {
    std::vector<Rollout*>& m = members[r.group];
    if (m.empty()) order.push_back(r.group);
    if (!m.empty() && r.completion.prompt != m.front()->completion.prompt)
      return LineError(path, r.line,
                       "group " + std::to_string(r.group) +
                           " has a different prompt_ids than its first "
                           "completion (line " +
                           std::to_string(m.front()->line) + ")");
    m.push_back(&r);
  }
  const std::vector<Rollout*>& first = members[order.front()];
  Batch batch;
  batch.groups = static_cast<int64_t>(order.size());
  batch.group_size = static_cast<int64_t>(first.size());
  for (int64_t g : order) {
    const std::vector<Rollout*>& m = members[g];
    if (static_cast<int64_t>(m.size()) != batch.group_size)
      return LineError(
          path, m.front()->line,
          "group " + std::to_string(g) + " has " + std::to_string(m.size()) +
              " completions but group " + std::to_string(first.front()->group) +
              " (line " + std::to_string(first.front()->line) + ") has " +
              std::to_string(first.size()) +
              "; every group must have the same size");
    for (Rollout* r : m) {
      batch.longest_completion = std::max<int64_t>(batch.longest_completion,
                                                   r->completion.tokens.size());
      batch.completions.push_back(std::move(r->completion));
    }
  }
  if (batch.group_size < 2)
    return LineError(path, first.front()->line,
                     "groups have one completion each; GRPO needs at least "
                     "2 per group for a relative advantage");
  return batch;
}

StatusOr<GrpoOptions> LearnerOptions(const Batch& batch, int64_t vocab) {
  if (FLAGS_max_completion_length < 0)
    return InvalidArgumentError("--max_completion_length must be >= 0");
  ASSIGN_OR_RETURN(GrpoOptions g, GrpoOptionsFromFlags());
  g.loss.max_completion_length = FLAGS_max_completion_length > 0
                                     ? FLAGS_max_completion_length
                                     : batch.longest_completion;
  g.lr.total_steps = FLAGS_num_iterations;
  g.max_micro_batch_tokens = FLAGS_max_micro_batch_tokens;
  g.sample_vocab = vocab;
  return g;
}

// The ids the sampler could draw, which logprobs normalise over.
StatusOr<int64_t> SampleVocab(const ModelConfig& config) {
  if (FLAGS_sample_vocab < 0 || FLAGS_sample_vocab > config.vocab_size)
    return InvalidArgumentError("--sample_vocab must be in [0, " +
                                std::to_string(config.vocab_size) + "]");
  if (FLAGS_sample_vocab > 0) return FLAGS_sample_vocab;
  if (!FLAGS_model_dir.empty() &&
      std::filesystem::exists(std::filesystem::path(FLAGS_model_dir) /
                              "tokenizer.json")) {
    ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                     LoadTokenizer(FLAGS_model_dir));
    // As the engine refuses it: ids the model cannot embed.
    if (tokenizer->vocab_size() > config.vocab_size)
      return InvalidArgumentError("the tokenizer in " + FLAGS_model_dir +
                                  " has " +
                                  std::to_string(tokenizer->vocab_size()) +
                                  " ids but the model's vocabulary has " +
                                  std::to_string(config.vocab_size));
    return tokenizer->vocab_size();
  }
  return config.vocab_size;
}

Status CheckPaths() {
  if (FLAGS_rollouts.empty())
    return InvalidArgumentError("--rollouts is required");
  if (FLAGS_out_dir.empty())
    return InvalidArgumentError("--out_dir is required");
  if (FLAGS_model_dir.empty() == FLAGS_preset.empty())
    return InvalidArgumentError("give exactly one of --model_dir and --preset");
  std::error_code ec;
  if (!FLAGS_model_dir.empty() &&
      std::filesystem::equivalent(FLAGS_model_dir, FLAGS_out_dir, ec))
    return InvalidArgumentError(
        "--out_dir must not be --model_dir: the input checkpoint is kept");
  if (!FLAGS_dump_grads.empty()) {
    const std::filesystem::path parent =
        std::filesystem::absolute(FLAGS_dump_grads, ec).parent_path();
    if (ec || !std::filesystem::is_directory(parent, ec))
      return NotFoundError("--dump_grads: no directory " + parent.string());
  }
  return OkStatus();
}

Status DumpGradients(const ParamLeaves& grads, const std::string& path) {
  return WriteSafetensors(path, LeafTensors(grads),
                          {{"format", "pt"}, {"content", "grpo_gradients"}});
}

// Makes out_dir a complete checkpoint: the tokenizer goes with the weights.
Status CopyTokenizerFiles() {
  if (FLAGS_model_dir.empty()) return OkStatus();
  for (const char* name :
       {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}) {
    const std::filesystem::path from =
        std::filesystem::path(FLAGS_model_dir) / name;
    std::error_code ec;
    if (!std::filesystem::exists(from, ec)) continue;
    const std::filesystem::path to =
        std::filesystem::path(FLAGS_out_dir) / name;
    std::filesystem::copy_file(
        from, to, std::filesystem::copy_options::overwrite_existing, ec);
    // The copy keeps the source's mode; a read-only source would make the
    // next step's save into the same directory fail.
    if (!ec)
      std::filesystem::permissions(to, std::filesystem::perms::owner_write,
                                   std::filesystem::perm_options::add, ec);
    if (ec)
      return InternalError("copying " + from.string() + ": " + ec.message());
  }
  return OkStatus();
}

json MetricsJson(const GrpoStepMetrics& m, const Batch& batch, double seconds) {
  json line = {{"phase", "grpo_step_offline"},
               {"loss", m.loss},
               {"reward_mean", m.reward_mean},
               {"reward_std", m.reward_std},
               {"advantage_mean", m.advantage_mean},
               {"advantage_std", m.advantage_std},
               {"completion_length_mean", m.completion_length_mean},
               {"completion_length_max", m.completion_length_max},
               {"truncated_fraction", m.truncated_fraction},
               {"clip_fraction", m.clip_fraction},
               {"dual_clip_fraction", m.dual_clip_fraction},
               {"kl", m.kl},
               {"ratio_mean", m.ratio_mean},
               {"ratio_min", m.ratio_min},
               {"ratio_max", m.ratio_max},
               {"logprob_mismatch_max", m.logprob_mismatch_max},
               {"logprob_mismatch_mean", m.logprob_mismatch_mean},
               {"grad_norm", m.grad_norm},
               {"learning_rate", m.learning_rate},
               {"train_tokens", m.train_tokens},
               {"train_seconds", m.train_seconds},
               {"reference_seconds", m.reference_seconds},
               {"completions", batch.completions.size()},
               {"groups", batch.groups},
               {"group_size", batch.group_size},
               {"seconds", seconds},
               {"out_dir", FLAGS_out_dir}};
  if (!FLAGS_dump_grads.empty()) line["grads_file"] = FLAGS_dump_grads;
  return line;
}

Status Run() {
  const auto start = SteadyClock::now();
  RETURN_IF_ERROR(CheckPaths());
  // The config alone first, so a bad rollouts file fails before the weights
  // are read.
  ModelConfig config;
  if (!FLAGS_model_dir.empty()) {
    ASSIGN_OR_RETURN(config, LoadModelConfig(FLAGS_model_dir));
  } else {
    ASSIGN_OR_RETURN(config, PresetConfig(FLAGS_preset));
  }
  ASSIGN_OR_RETURN(const int64_t vocab, SampleVocab(config));
  ASSIGN_OR_RETURN(
      std::vector<Rollout> rollouts,
      ReadLines(FLAGS_rollouts, {vocab, FLAGS_max_micro_batch_tokens,
                                 config.max_position_embeddings}));
  ASSIGN_OR_RETURN(Batch batch,
                   GroupRollouts(FLAGS_rollouts, std::move(rollouts)));
  ASSIGN_OR_RETURN(GrpoOptions options, LearnerOptions(batch, vocab));

  ASSIGN_OR_RETURN(std::vector<Device> devices,
                   DiscoverLocalDevices(FLAGS_num_virtual_devices));
  ASSIGN_OR_RETURN(std::unique_ptr<Mesh> actor, Mesh::Create("actor", devices));
  std::unique_ptr<GrpoLearner> learner;
  {  // The loaded weights are freed once the learner has its own copy.
    ASSIGN_OR_RETURN(LoadedModel model,
                     LoadModel({FLAGS_model_dir, FLAGS_preset,
                                FLAGS_load_format, FLAGS_seed, FLAGS_dtype},
                               actor.get()));
    config = model.config;
    ASSIGN_OR_RETURN(learner,
                     GrpoLearner::Create(config, model.weights, actor.get(),
                                         nullptr, options));
  }
  ASSIGN_OR_RETURN(GrpoStepMetrics metrics,
                   learner->Step(batch.completions, batch.group_size));

  // Gradients first: if that fails, out_dir is not touched.
  if (!FLAGS_dump_grads.empty())
    RETURN_IF_ERROR(DumpGradients(learner->gradients(), FLAGS_dump_grads));
  RETURN_IF_ERROR(learner->WithMasterWeights([&](const ParamLeaves& master) {
    return SaveCheckpoint(master, config, FLAGS_out_dir);
  }));
  RETURN_IF_ERROR(CopyTokenizerFiles());
  const double seconds = SecondsSince(start);
  std::cout << MetricsJson(metrics, batch, seconds).dump() << std::endl;
  return OkStatus();
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "One offline GRPO step on logged rollouts.\n"
      "  grpo_step --model_dir=DIR --rollouts=FILE.jsonl --out_dir=DIR2 "
      "[--dump_grads=FILE.safetensors]\n"
      "FILE.jsonl: one JSON object per completion:\n"
      "  {\"group\": <int>, \"prompt_ids\": [..], \"completion_ids\": [..],\n"
      "   \"reward\": <number>, \"behaviour_logprobs\": [..] (one per "
      "completion token),\n"
      "   \"truncated\": <bool, optional, default false>}\n"
      "All groups have the same size (>= 2) and one prompt each. Writes the "
      "updated checkpoint to --out_dir and prints one JSON metrics line.");
  // Offline steps default to no KL term (no reference model to load).
  gflags::SetCommandLineOptionWithMode("beta", "0", gflags::SET_FLAGS_DEFAULT);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  rlrt::Status status = rlrt::Run();
  if (!status.ok()) {
    std::cerr << "grpo_step: " << status << std::endl;
    return 1;
  }
  return 0;
}
