#include "trainer_bridge/train_checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "models/io/checkpoint.h"
#include "models/io/safetensors.h"
#include "models/lora/peft_io.h"

namespace rlrt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kFirst[] = "exp_avg/";
constexpr char kSecond[] = "exp_avg_sq/";

std::string StepName(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step-%08lld", static_cast<long long>(step));
  return buf;
}

Status WriteText(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return InternalError("cannot write " + tmp.string());
  }
  std::error_code error;
  fs::rename(tmp, path, error);
  if (error)
    return InternalError("cannot rename " + tmp.string() + ": " +
                         error.message());
  return OkStatus();
}

Status SaveOptimizer(const fs::path& path, const AdamW& optimizer) {
  std::vector<SafetensorsTensorData> tensors =
      LeafTensors(optimizer.first_moment(), kFirst);
  for (SafetensorsTensorData& t :
       LeafTensors(optimizer.second_moment(), kSecond))
    tensors.push_back(std::move(t));
  return WriteSafetensors(path, tensors,
                          {{"steps", std::to_string(optimizer.steps())}});
}

// Fills `leaves` (allocated with the weights' specs) from `prefix`+name.
Status ReadMoment(const SafetensorsFile& file, const char* prefix,
                  ParamLeaves& leaves) {
  for (size_t i = 0; i < leaves.size(); ++i) {
    const LeafSpec& spec = leaves.spec(i);
    const SafetensorsTensor* t = file.Find(prefix + spec.name);
    if (t == nullptr)
      return DataLossError(file.path().string() + " has no " + prefix +
                           spec.name);
    if (t->dtype != spec.dtype || t->shape != spec.shape ||
        t->data.size() != leaves.bytes(i))
      return DataLossError(file.path().string() + ": " + prefix + spec.name +
                           " has the wrong shape or dtype");
    std::memcpy(leaves.data(i), t->data.data(), leaves.bytes(i));
  }
  return OkStatus();
}

// Step names are zero-padded, so name order is step order. Best effort: a
// directory that cannot be removed now is removed by a later save.
void PruneOldCheckpoints(const fs::path& dir, const std::string& newest,
                         int keep_last) {
  std::vector<std::string> steps;
  std::error_code error;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, error)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step-", 0) == 0 && name <= newest) steps.push_back(name);
  }
  std::sort(steps.begin(), steps.end());
  const size_t keep = static_cast<size_t>(keep_last);
  for (size_t i = 0; i + keep < steps.size(); ++i)
    fs::remove_all(dir / steps[i], error);
}

}  // namespace

Status SaveTrainingCheckpoint(const fs::path& dir, const GrpoLearner& learner,
                              const ModelConfig& config,
                              const TrainingState& state, int keep_last) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error)
    return InternalError("cannot create " + dir.string() + ": " +
                         error.message());
  const fs::path final_dir = dir / StepName(state.step);
  const fs::path tmp = dir / (".tmp-" + StepName(state.step));
  fs::remove_all(tmp, error);
  if (learner.adapter() != nullptr) {
    RETURN_IF_ERROR(SavePeftAdapter(tmp, *learner.adapter()));
  } else {
    RETURN_IF_ERROR(learner.WithMasterWeights([&](const ParamLeaves& master) {
      return SaveCheckpoint(master, config, tmp);
    }));
  }
  RETURN_IF_ERROR(
      SaveOptimizer(tmp / "optimizer.safetensors", learner.optimizer()));
  if (learner.reference_replaced()) {
    RETURN_IF_ERROR(WriteSafetensors(tmp / "reference.safetensors",
                                     LeafTensors(*learner.reference_weights()),
                                     {}));
  }
  const json s = {{"step", state.step},
                  {"policy_version", state.policy_version},
                  {"seed", state.seed},
                  {"batch_size", state.batch_size},
                  {"num_generations", state.num_generations},
                  {"optimizer_steps", learner.optimizer().steps()}};
  RETURN_IF_ERROR(WriteText(tmp / "state.json", s.dump(1)));
  fs::remove_all(final_dir, error);
  fs::rename(tmp, final_dir, error);
  if (error)
    return InternalError("cannot rename " + tmp.string() + ": " +
                         error.message());
  RETURN_IF_ERROR(WriteText(dir / "latest", StepName(state.step) + "\n"));
  if (keep_last > 0) PruneOldCheckpoints(dir, StepName(state.step), keep_last);
  return OkStatus();
}

StatusOr<LoadedTrainingCheckpoint> LoadLatestTrainingCheckpoint(
    const fs::path& dir, Mesh* mesh, const ModelConfig* adapter_base) {
  std::ifstream latest(dir / "latest");
  std::string name;
  if (!latest || !std::getline(latest, name) || name.empty())
    return NotFoundError("no checkpoint to resume: " +
                         (dir / "latest").string() + " is missing or empty");
  if (name.find('/') != std::string::npos || name.rfind("step-", 0) != 0)
    return DataLossError((dir / "latest").string() + " names '" + name +
                         "', not a step directory");
  const fs::path path = dir / name;
  std::ifstream state_file(path / "state.json");
  const json s = json::parse(state_file, nullptr, /*allow_exceptions=*/false);
  for (const char* key : {"step", "policy_version", "seed", "batch_size",
                          "num_generations", "optimizer_steps"}) {
    if (s.is_discarded() || !s.contains(key) || !s[key].is_number_unsigned())
      return DataLossError((path / "state.json").string() +
                           ": missing or bad \"" + key + "\"");
  }
  TrainingState state;
  state.step = s["step"].get<int64_t>();
  state.policy_version = s["policy_version"].get<uint64_t>();
  state.seed = s["seed"].get<uint64_t>();
  state.batch_size = s["batch_size"].get<int64_t>();
  state.num_generations = s["num_generations"].get<int64_t>();
  std::optional<LoadedCheckpoint> model;
  const bool lora = fs::exists(path / kAdapterConfigFile);
  if (lora) {
    if (adapter_base == nullptr)
      return FailedPreconditionError(
          path.string() +
          " holds a LoRA adapter: resume it as a LoRA run (--lora_rank and "
          "the other --lora_* flags it was made with)");
    ASSIGN_OR_RETURN(std::unique_ptr<LoraAdapter> adapter,
                     LoadPeftAdapter(path, *adapter_base));
    // Only the trained leaves are wanted: taken from the adapter read.
    model = LoadedCheckpoint{*adapter_base, std::move(adapter->leaves())};
  } else {
    ASSIGN_OR_RETURN(model, LoadCheckpoint(path, mesh));
  }
  ASSIGN_OR_RETURN(ParamLeaves first,
                   ParamLeaves::Allocate(model->leaves.specs()));
  ASSIGN_OR_RETURN(ParamLeaves second,
                   ParamLeaves::Allocate(model->leaves.specs()));
  ASSIGN_OR_RETURN(SafetensorsFile optimizer,
                   SafetensorsFile::Open(path / "optimizer.safetensors"));
  RETURN_IF_ERROR(ReadMoment(optimizer, kFirst, first));
  RETURN_IF_ERROR(ReadMoment(optimizer, kSecond, second));
  std::optional<ParamLeaves> reference;
  if (fs::exists(path / "reference.safetensors")) {
    ASSIGN_OR_RETURN(SafetensorsFile file,
                     SafetensorsFile::Open(path / "reference.safetensors"));
    // The reference keeps its own dtype (the policy's compute dtype).
    std::vector<LeafSpec> specs = model->leaves.specs();
    for (LeafSpec& spec : specs) {
      const SafetensorsTensor* t = file.Find(spec.name);
      if (t == nullptr)
        return DataLossError(file.path().string() + " has no " + spec.name);
      spec.dtype = t->dtype;
    }
    ASSIGN_OR_RETURN(ParamLeaves leaves, ParamLeaves::Allocate(specs));
    RETURN_IF_ERROR(ReadMoment(file, "", leaves));
    reference = std::move(leaves);
  }
  return LoadedTrainingCheckpoint{path,
                                  model->config,
                                  std::move(model->leaves),
                                  lora,
                                  std::move(first),
                                  std::move(second),
                                  s["optimizer_steps"].get<int64_t>(),
                                  state,
                                  std::move(reference)};
}

}  // namespace rlrt
