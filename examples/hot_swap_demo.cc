// hot_swap_demo: the reference hot-swap flow on a real engine.
//
// Partitions the local devices; starts a SamplerEngine with dummy weights on
// the rollout mesh; on the actor mesh, a trainer-side leaf list of the same
// structure gets new weights (a Hugging Face checkpoint with --model_dir,
// else the engine's dummy weights perturbed); one UpdateParams carries them
// into the running engine in place; then the engine answers --prompt.
// Prints JSON lines (partition, engine_ready_dummy, weights_swapped,
// generate_result); exits 0 only when the engine's content hash after the
// swap equals the trainer's.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/format.h"
#include "base/timing.h"
#include "examples/cli_support.h"
#include "examples/model_flags.h"
#include "models/forward/model_source.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "partition/device.h"
#include "partition/partition_spec.h"
#include "sampler/engine.h"
#include "trainer_bridge/update_builder.h"

DEFINE_string(model_dir, "",
              "A Hugging Face checkpoint directory (config.json, "
              "*.safetensors) to swap in; empty: perturbed dummy weights.");
DEFINE_string(preset, "qwen3-tiny",
              "The model shape when --model_dir is empty.");
DEFINE_string(tokenizer_dir, "",
              "tokenizer.json + tokenizer_config.json; empty: --model_dir if "
              "it has them, else the Qwen3 tokenizer in ../shared.");
DEFINE_string(partition, "",
              "Partition spec, e.g. 'rollout=1,actor=rest' (see "
              "partition/partition_spec.h); empty: half the devices each.");
DEFINE_int32(num_virtual_devices, 0,
             "Use this many virtual devices instead of one per core.");
DEFINE_uint64(init_seed, 0, "Seed of the engine's dummy weights.");
DEFINE_uint64(seed, 42, "Seed of the perturbation noise (no --model_dir).");
DEFINE_double(scale, 1e-2, "Standard deviation of the perturbation noise.");
DEFINE_int64(num_leaves, 1000000, "Perturb the first this many leaves.");
DEFINE_string(prompt, "你是谁", "The user message to answer after the swap.");
DEFINE_bool(chat, true,
            "Send --prompt as a user message through the chat template "
            "(Qwen3 tokenizers); false: as raw text.");
DEFINE_int64(max_new_tokens, 32, "Tokens to generate.");
DEFINE_double(temperature, 0.0, "0: greedy.");
DEFINE_uint64(sample_seed, 0, "Seed of the sampling stream.");

namespace rlrt {
namespace {

using nlohmann::json;
json ChecksumJson(const LeafChecksums& c) {
  return {{"float64_sum", c.float64_sum},
          {"content_hash", HexU64(c.content_hash)}};
}

void Emit(const json& line) { std::cout << JsonLine(line) << std::endl; }

std::string TokenizerDir() {
  return ResolveTokenizerDir(FLAGS_tokenizer_dir, FLAGS_model_dir);
}

Status Run() {
  if (FLAGS_scale < 0) return InvalidArgumentError("--scale must be >= 0");
  if (FLAGS_num_leaves < 0)
    return InvalidArgumentError("--num_leaves must be >= 0");
  ASSIGN_OR_RETURN(std::vector<Device> devices,
                   DiscoverLocalDevices(FLAGS_num_virtual_devices));
  ASSIGN_OR_RETURN(Partition partition,
                   Partition::Create(FLAGS_partition, devices));
  Emit({{"phase", "partition"},
        {"devices", devices.size()},
        {"meshes", partition.ToString()}});

  // The engine starts with dummy weights of the target's structure.
  EngineOptions options;
  options.model.model_dir = FLAGS_model_dir;
  options.model.preset = FLAGS_model_dir.empty() ? FLAGS_preset : "";
  options.model.load_format = "dummy";
  options.model.seed = FLAGS_init_seed;
  options.model.dtype = FLAGS_dtype;
  options.tokenizer_dir = TokenizerDir();
  options.max_total_tokens = 4096;
  ASSIGN_OR_RETURN(std::unique_ptr<SamplerEngine> engine,
                   SamplerEngine::Create(options, &partition.rollout()));
  std::cout << engine->ready_line() << std::endl;

  // The trainer's side, on the actor mesh.
  SteadyClock::time_point start = SteadyClock::now();
  ModelSource trainer_source = options.model;
  if (!FLAGS_model_dir.empty()) trainer_source.load_format = "safetensors";
  ASSIGN_OR_RETURN(LoadedModel trainer,
                   LoadModel(trainer_source, &partition.actor()));
  if (FLAGS_model_dir.empty()) {
    RETURN_IF_ERROR(Perturb(trainer.weights, FLAGS_seed, FLAGS_scale,
                            FLAGS_num_leaves, &partition.actor()));
  }
  const double load_ms = MillisecondsSince(start);
  const LeafChecksums trainer_sums =
      ComputeChecksums(trainer.weights, &partition.actor());

  ASSIGN_OR_RETURN(const LeafChecksums before, engine->WeightsChecksum());
  start = SteadyClock::now();
  proto::UpdateParams update;
  BuildOptions build;
  build.include_content_hash = true;
  build.flush_cache = true;
  RETURN_IF_ERROR(BuildUpdateParams(trainer.weights, /*version=*/1, build,
                                    &partition.actor(), &update));
  const double build_ms = MillisecondsSince(start);
  ASSIGN_OR_RETURN(const ApplyReport report, engine->UpdateParams(update));
  ASSIGN_OR_RETURN(const LeafChecksums after, engine->WeightsChecksum());
  const bool match = after.content_hash == trainer_sums.content_hash &&
                     after.float64_sum == trainer_sums.float64_sum;
  Emit({{"phase", "weights_swapped"},
        {"source",
         FLAGS_model_dir.empty() ? "perturbed_dummy" : FLAGS_model_dir},
        {"version", report.version},
        {"bytes", report.bytes_copied},
        {"load_ms", load_ms},
        {"build_ms", build_ms},
        {"apply_ms", report.elapsed_us / 1000.0},
        {"stall_ms", engine->Stats().last_update_stall_ms},
        {"checksum_before", ChecksumJson(before)},
        {"checksum_after", ChecksumJson(after)},
        {"checksum_delta", after.float64_sum - before.float64_sum},
        {"trainer_checksum", ChecksumJson(trainer_sums)},
        {"match", match}});
  if (!match) {
    return DataLossError(
        "engine weights differ from the trainer's after the swap");
  }

  GenerateRequest request;
  if (FLAGS_chat) {
    request.messages = {{"user", FLAGS_prompt, std::nullopt}};
  } else {
    request.text = FLAGS_prompt;
  }
  request.sampling.temperature = static_cast<float>(FLAGS_temperature);
  request.stop.max_new_tokens = FLAGS_max_new_tokens;
  request.seed = FLAGS_sample_seed;
  ASSIGN_OR_RETURN(GenerateResult result, engine->Generate(request));
  const SampleOutput& out = result.samples[0];
  Emit({{"phase", "generate_result"},
        {"prompt", FLAGS_prompt},
        {"text", out.text},
        {"output_ids", out.token_ids},
        {"meta_info",
         {{"id", result.id},
          {"prompt_tokens", result.prompt_tokens},
          {"completion_tokens", result.completion_tokens},
          {"finish_reason", FinishReasonName(out.finish_reason)},
          {"e2e_latency", result.e2e_seconds},
          {"weight_version", out.weight_versions.empty()
                                 ? engine->Stats().weight_version
                                 : out.weight_versions.back()}}}});
  return OkStatus();
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Starts a dummy-weight engine, swaps new weights in with one "
      "UpdateParams, and generates.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  rlrt::Status status = rlrt::Run();
  if (!status.ok()) {
    std::cerr << "hot_swap_demo: " << status << std::endl;
    return 1;
  }
  return 0;
}
