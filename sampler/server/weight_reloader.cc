#include "sampler/server/weight_reloader.h"

#include <chrono>

#include "base/timing.h"
#include "models/forward/model_source.h"

namespace rlrt {
namespace {}  // namespace

std::string_view ReloadStateName(ReloadState state) {
  switch (state) {
    case ReloadState::kIdle:
      return "idle";
    case ReloadState::kLoading:
      return "loading";
    case ReloadState::kApplying:
      return "applying";
    case ReloadState::kDone:
      return "done";
    case ReloadState::kFailed:
      return "failed";
  }
  return "unknown";
}

WeightReloader::WeightReloader(SamplerEngine* engine, Mesh* staging_mesh)
    : engine_(engine), staging_mesh_(staging_mesh) {}

WeightReloader::~WeightReloader() { Wait(); }

bool WeightReloader::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_.state == ReloadState::kLoading ||
         status_.state == ReloadState::kApplying;
}

ReloadStatus WeightReloader::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void WeightReloader::Wait() {
  std::thread worker;
  {
    std::lock_guard<std::mutex> lock(mu_);
    worker = std::move(worker_);
  }
  if (worker.joinable()) worker.join();
}

Status WeightReloader::Start(const std::string& model_path,
                             const std::string& load_format, uint64_t seed,
                             std::optional<uint64_t> version) {
  if (load_format != "safetensors" && load_format != "dummy" &&
      load_format != "auto") {
    return InvalidArgumentError(
        "load_format must be \"safetensors\" or \"dummy\", not \"" +
        load_format + "\"");
  }
  if (model_path.empty()) return InvalidArgumentError("model_path is empty");
  std::lock_guard<std::mutex> lock(mu_);
  if (status_.state == ReloadState::kLoading ||
      status_.state == ReloadState::kApplying) {
    return FailedPreconditionError("a reload of " + status_.model_path +
                                   " is already running");
  }
  // The previous worker has finished (its state is final); reap it.
  if (worker_.joinable()) worker_.join();
  status_.state = ReloadState::kLoading;
  status_.model_path = model_path;
  status_.load_format = load_format;
  status_.error.clear();
  status_.load_seconds = status_.apply_seconds = 0;
  worker_ = std::thread(&WeightReloader::Run, this, model_path, load_format,
                        seed, version);
  return OkStatus();
}

void WeightReloader::Run(std::string model_path, std::string load_format,
                         uint64_t seed, std::optional<uint64_t> version) {
  auto fail = [&](const Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    status_.state = ReloadState::kFailed;
    status_.error = status.ToString();
    status_.version = engine_->Stats().weight_version;
    ++status_.reloads_failed;
  };
  const SteadyClock::time_point start = SteadyClock::now();
  ModelSource source;
  source.model_dir = model_path;
  source.load_format = load_format;
  source.seed = seed;
  // The checkpoint is read into the engine's dtype (a BF16 server reloading
  // a float32 checkpoint rounds it), so its structure always matches.
  source.dtype = DTypeFlagName(engine_->weight_dtype());
  // Validated while read: a missing file, a wrong shape or a truncated
  // tensor fails here, before the engine is touched.
  StatusOr<LoadedModel> loaded = LoadModel(source, staging_mesh_);
  if (!loaded.ok()) return fail(loaded.status());
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.load_seconds = SecondsSince(start);
    status_.state = ReloadState::kApplying;
  }
  const SteadyClock::time_point apply_start = SteadyClock::now();
  StatusOr<ApplyReport> applied =
      version ? engine_->UpdateFromLeaves(loaded->weights, *version,
                                          /*flush_cache=*/true,
                                          VersionRule::kNewerOrSame)
              : engine_->UpdateFromLeaves(loaded->weights,
                                          engine_->Stats().weight_version + 1,
                                          /*flush_cache=*/true);
  if (!applied.ok()) return fail(applied.status());
  std::lock_guard<std::mutex> lock(mu_);
  status_.apply_seconds = SecondsSince(apply_start);
  status_.state = ReloadState::kDone;
  status_.version = applied->version;
  ++status_.reloads_done;
}

}  // namespace rlrt
