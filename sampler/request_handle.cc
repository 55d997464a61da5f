#include "sampler/request_handle.h"

namespace rlrt {

void RequestCompletion::Finish(StatusOr<GenerateResult> result) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (result_.has_value()) return;
    result_.emplace(std::move(result));
  }
  cv_.notify_all();
}

bool RequestCompletion::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return result_.has_value();
}

StatusOr<GenerateResult> RequestCompletion::Wait() const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return result_.has_value(); });
  return *result_;
}

std::optional<StatusOr<GenerateResult>> RequestCompletion::WaitFor(
    std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return result_.has_value(); }))
    return std::nullopt;
  return *result_;
}

}  // namespace rlrt
