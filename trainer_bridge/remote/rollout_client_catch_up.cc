// RolloutClient's required weights: which servers may take generation, and
// the thread that brings servers that are behind back to the required
// version (see rollout_client.h).
#include <glog/logging.h>
#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "base/timing.h"
#include "trainer_bridge/remote/rollout_client.h"

namespace rlrt {
namespace {

constexpr std::chrono::milliseconds kCatchUpPeriod{200};
constexpr double kProbeTimeoutSeconds = 2;

}  // namespace

void RolloutClient::SetRequiredWeights(
    uint64_t version, std::shared_ptr<const WireUpdate> update) {
  {
    std::lock_guard<std::mutex> lock(load_mu_);
    required_version_ = version;
    required_update_ = std::move(update);
  }
  catch_up_cv_.notify_all();
}

void RolloutClient::MarkBehind(size_t server) {
  {
    std::lock_guard<std::mutex> lock(load_mu_);
    if (loads_[server].behind) return;
    loads_[server].behind = true;
  }
  LOG(WARNING) << urls_[server]
               << " is behind the required weights (or unreachable); no "
                  "generation goes to it until it catches up";
  catch_up_cv_.notify_all();
}

bool RolloutClient::IsBehind(size_t server) {
  std::lock_guard<std::mutex> lock(load_mu_);
  return loads_[server].behind;
}

void RolloutClient::WaitForAServerInStep() {
  const SteadyClock::time_point deadline =
      SteadyClock::now() +
      std::chrono::duration_cast<SteadyClock::duration>(
          std::chrono::duration<double>(options_.request_timeout_seconds));
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(load_mu_);
      for (const ServerLoad& l : loads_) {
        if (!l.behind) return;
      }
    }
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      if (stopping_) return;
    }
    // Past the deadline the attempt goes ahead; its reply decides.
    if (SteadyClock::now() > deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void RolloutClient::CatchUpLoop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      catch_up_cv_.wait_for(lock, kCatchUpPeriod, [this] { return stopping_; });
      if (stopping_) return;
    }
    for (size_t i = 0; i < urls_.size(); ++i) {
      if (IsBehind(i)) CatchUp(i);
    }
  }
}

void RolloutClient::CatchUp(size_t server) {
  HttpReply probe =
      Call(server, Method::kGet, "/get_load", "", "", kProbeTimeoutSeconds);
  if (probe.status != 200) return;  // Still down: try again next round.
  const nlohmann::json load =
      nlohmann::json::parse(probe.body, nullptr, /*allow_exceptions=*/false);
  if (!load.is_object() || !load.contains("weight_version") ||
      !load["weight_version"].is_number_unsigned())
    return;
  const uint64_t held = load["weight_version"].get<uint64_t>();
  uint64_t required;
  std::shared_ptr<const WireUpdate> update;
  {
    std::lock_guard<std::mutex> lock(load_mu_);
    required = required_version_;
    update = required_update_;
  }
  if (held < required) {
    if (update == nullptr) return;
    const ServerResult pushed = PushUpdate(server, *update);
    // 409: it got a newer version meanwhile; the next round looks again.
    if (!pushed.status.ok()) {
      if (pushed.http_status != 409)
        LOG(WARNING) << "catch-up of " << urls_[server] << " to version "
                     << required << " failed: " << pushed.status;
      return;
    }
    catch_ups_.fetch_add(1);
  }
  std::lock_guard<std::mutex> lock(load_mu_);
  // A newer version required meanwhile: it is still behind that one.
  if (required_version_ != required) return;
  loads_[server].behind = false;
  LOG(INFO) << urls_[server] << " holds weight version >= " << required
            << " and takes generation again";
}

}  // namespace rlrt
