// score: the forward pass from the command line.
//
//   score --model_dir=DIR --token_ids=1,2,3
//   score --preset=qwen3-tiny --load_format=dummy --seed=1 --token_ids=...
//
// Prints one JSON line: for each position i, the logprob of token i+1 given
// tokens 0..i ("logprobs", T-1 values) and the most likely next token
// ("argmax", T values). --dump_logits=FILE writes all logits as
// little-endian float32 [T, vocab].
//
// With --lora_dir=ADAPTER (a PEFT adapter directory) the model runs with the
// adapter, unmerged, as the sampler serves it. --merge_lora=OUT also folds
// the adapter into the base (W + s B A) and writes the merged Hugging Face
// checkpoint (config.json and safetensors in the base's dtype) to OUT; the
// scores are then the merged model's.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/timing.h"
#include "examples/model_flags.h"
#include "models/forward/kv_cache.h"
#include "models/forward/model_source.h"
#include "models/forward/transformer.h"
#include "models/io/checkpoint.h"
#include "models/lora/lora_merge.h"
#include "models/lora/peft_io.h"
#include "models/ops/log_softmax.h"
#include "partition/device.h"
#include "partition/mesh.h"

DEFINE_string(model_dir, "", "Hugging Face checkpoint directory.");
DEFINE_string(preset, "", "Built-in model preset (instead of --model_dir).");
DEFINE_string(load_format, "auto", "auto, safetensors or dummy.");
DEFINE_uint64(seed, 0, "Seed of dummy weights.");
DEFINE_string(token_ids, "", "Comma-separated token ids to score.");
DEFINE_string(dump_logits, "", "Write float32 logits [T, vocab] to this file.");
DEFINE_int32(num_devices, 0, "Devices to run on (0: every core).");
DEFINE_string(lora_dir, "", "PEFT LoRA adapter directory to score with.");
DEFINE_string(merge_lora, "",
              "Write the base with --lora_dir merged in to this directory "
              "(a Hugging Face checkpoint) and score the merged model.");

namespace rlrt {
namespace {

StatusOr<std::vector<int32_t>> ParseIds(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno != 0 || v < 0 || v > INT32_MAX) {
      return InvalidArgumentError("bad token id '" + item + "' in --token_ids");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) return InvalidArgumentError("--token_ids is empty");
  return ids;
}

Status Run() {
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseIds(FLAGS_token_ids));
  ASSIGN_OR_RETURN(std::vector<Device> devices, DiscoverLocalDevices());
  if (FLAGS_num_devices < 0 ||
      FLAGS_num_devices > static_cast<int>(devices.size())) {
    return InvalidArgumentError("--num_devices must be in [0, " +
                                std::to_string(devices.size()) + "]");
  }
  if (FLAGS_num_devices > 0) devices.resize(FLAGS_num_devices);
  ASSIGN_OR_RETURN(std::unique_ptr<Mesh> mesh, Mesh::Create("score", devices));
  ASSIGN_OR_RETURN(LoadedModel model,
                   LoadModel({FLAGS_model_dir, FLAGS_preset, FLAGS_load_format,
                              FLAGS_seed, FLAGS_dtype},
                             mesh.get()));
  std::unique_ptr<LoraAdapter> adapter;
  if (!FLAGS_merge_lora.empty() && FLAGS_lora_dir.empty()) {
    return InvalidArgumentError("--merge_lora needs --lora_dir");
  }
  if (!FLAGS_lora_dir.empty()) {
    ASSIGN_OR_RETURN(adapter, LoadPeftAdapter(FLAGS_lora_dir, model.config));
  }
  if (!FLAGS_merge_lora.empty()) {
    RETURN_IF_ERROR(MergeLoraInto(*adapter, model.config, model.weights));
    SaveCheckpointOptions save;
    save.dtype = DecoderMatrixDType(model.weights.specs());
    RETURN_IF_ERROR(
        SaveCheckpoint(model.weights, model.config, FLAGS_merge_lora, save));
    adapter.reset();
  }
  const int64_t t = static_cast<int64_t>(ids.size());
  if (t > model.config.max_position_embeddings) {
    return InvalidArgumentError(
        "more tokens than the model's max_position_embeddings");
  }
  TransformerOptions options;
  options.max_batch_tokens = t;
  options.max_context = t;
  if (adapter != nullptr) options.max_lora_rank = adapter->rank();
  ASSIGN_OR_RETURN(
      std::unique_ptr<Transformer> transformer,
      Transformer::Create(model.config, model.weights, mesh.get(), options));
  constexpr int64_t kPageSize = 16;
  ASSIGN_OR_RETURN(std::unique_ptr<KvCache> cache,
                   KvCache::Create(KvCacheShape::For(model.config, t, kPageSize,
                                                     transformer->kv_dtype())));
  PagePool pool(cache->shape().num_pages);
  std::vector<int32_t> pages;
  RETURN_IF_ERROR(pool.Allocate(cache->shape().num_pages, &pages));

  const int64_t vocab = model.config.vocab_size;
  std::vector<float> logits(t * vocab);
  const auto start = SteadyClock::now();
  SequenceInput input{ids, 0, pages, /*all_logits=*/true, adapter.get()};
  RETURN_IF_ERROR(transformer->Forward({&input, 1}, *cache, logits));
  const double ms = MillisecondsSince(start);

  std::vector<double> logprobs;
  std::vector<int32_t> argmax;
  for (int64_t i = 0; i < t; ++i) {
    const float* row = logits.data() + i * vocab;
    argmax.push_back(ArgMax(row, vocab));
    if (i + 1 < t) logprobs.push_back(TokenLogprob(row, vocab, ids[i + 1]));
  }
  if (!FLAGS_dump_logits.empty()) {
    std::ofstream out(FLAGS_dump_logits, std::ios::binary);
    out.write(reinterpret_cast<const char*>(logits.data()),
              logits.size() * sizeof(float));
    if (!out) return InternalError("cannot write " + FLAGS_dump_logits);
  }
  nlohmann::json line = {
      {"model_type", std::string(ModelTypeName(model.config.model_type))},
      {"tokens", t},
      {"vocab_size", vocab},
      {"logprobs", logprobs},
      {"argmax", argmax},
      {"lora", FLAGS_lora_dir.empty() || !FLAGS_merge_lora.empty()
                   ? nlohmann::json(nullptr)
                   : nlohmann::json(FLAGS_lora_dir)},
      {"forward_ms", ms}};
  std::cout << line.dump() << std::endl;
  return OkStatus();
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Scores token ids with a model: logprobs and argmax per position.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  rlrt::Status status = rlrt::Run();
  if (!status.ok()) {
    std::cerr << "score: " << status << std::endl;
    return 1;
  }
  return 0;
}
