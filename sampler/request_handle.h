// The caller's side of a submitted request: wait for its result. The
// scheduler thread fills the result exactly once; any thread may wait.
#ifndef RLRT_SAMPLER_REQUEST_HANDLE_H_
#define RLRT_SAMPLER_REQUEST_HANDLE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "base/status.h"
#include "sampler/request.h"

namespace rlrt {

// Shared by the handle and the scheduler.
class RequestCompletion {
 public:
  // The first call wins; later ones are ignored.
  void Finish(StatusOr<GenerateResult> result);
  bool done() const;
  // Blocks until finished; every caller gets a copy.
  StatusOr<GenerateResult> Wait() const;
  // nullopt on timeout.
  std::optional<StatusOr<GenerateResult>> WaitFor(
      std::chrono::milliseconds timeout) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::optional<StatusOr<GenerateResult>> result_;
};

class RequestHandle {
 public:
  RequestHandle(uint64_t id, std::shared_ptr<const RequestCompletion> done)
      : id_(id), done_(std::move(done)) {}

  uint64_t id() const { return id_; }
  bool done() const { return done_->done(); }
  StatusOr<GenerateResult> Wait() const { return done_->Wait(); }
  std::optional<StatusOr<GenerateResult>> WaitFor(
      std::chrono::milliseconds timeout) const {
    return done_->WaitFor(timeout);
  }

 private:
  uint64_t id_;
  std::shared_ptr<const RequestCompletion> done_;
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_REQUEST_HANDLE_H_
