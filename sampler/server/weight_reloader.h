// Reloading a running engine's weights from a checkpoint on disk, in the
// background: the checkpoint is read into a staging leaf list (the engine
// keeps serving with its old weights meanwhile), then applied as one update
// at a step boundary, or refused with the old weights untouched. One reload
// at a time; its progress and outcome are kept for a status endpoint.
#ifndef RLRT_SAMPLER_SERVER_WEIGHT_RELOADER_H_
#define RLRT_SAMPLER_SERVER_WEIGHT_RELOADER_H_

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/status.h"
#include "sampler/engine.h"

namespace rlrt {

enum class ReloadState { kIdle, kLoading, kApplying, kDone, kFailed };
std::string_view ReloadStateName(ReloadState state);

struct ReloadStatus {
  ReloadState state = ReloadState::kIdle;
  std::string model_path;
  std::string load_format;
  std::string error;         // Why it failed (kFailed).
  uint64_t version = 0;      // The engine's version after it.
  double load_seconds = 0;   // Reading the checkpoint.
  double apply_seconds = 0;  // Waiting for and doing the swap.
  int64_t reloads_done = 0;  // Since start.
  int64_t reloads_failed = 0;
};

class WeightReloader {
 public:
  // `engine` must outlive this; `staging_mesh` (may be null) reads the
  // checkpoint.
  WeightReloader(SamplerEngine* engine, Mesh* staging_mesh);
  ~WeightReloader();  // Waits for a reload in progress.
  WeightReloader(const WeightReloader&) = delete;
  WeightReloader& operator=(const WeightReloader&) = delete;

  // Starts a reload of `model_path` ("safetensors" or "dummy" with `seed`).
  // The weights get `version` when given (at least the version in force:
  // re-reading the version in force is allowed, e.g. the trainer's own
  // checkpoint of it), else the version in force + 1. FailedPrecondition
  // when one is already running; InvalidArgument for a bad load_format.
  // Returns at once; see status().
  Status Start(const std::string& model_path, const std::string& load_format,
               uint64_t seed = 0, std::optional<uint64_t> version = {});
  ReloadStatus status() const;
  bool busy() const;
  // Blocks until no reload runs (tests, shutdown).
  void Wait();

 private:
  void Run(std::string model_path, std::string load_format, uint64_t seed,
           std::optional<uint64_t> version);

  SamplerEngine* const engine_;
  Mesh* const staging_mesh_;
  mutable std::mutex mu_;
  ReloadStatus status_;  // Guarded by mu_.
  std::thread worker_;   // Started and joined under mu_.
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SERVER_WEIGHT_RELOADER_H_
