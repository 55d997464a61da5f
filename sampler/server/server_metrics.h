// The rollout server's counters and their Prometheus text exposition.
// Counters are atomics bumped by the HTTP handler threads; gauges (load,
// weight version, reloads) are read from the engine and the reloader when
// scraped.
#ifndef RLRT_SAMPLER_SERVER_SERVER_METRICS_H_
#define RLRT_SAMPLER_SERVER_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "sampler/engine.h"
#include "sampler/server/weight_reloader.h"
#include "sampler/update_stream.h"

namespace rlrt {

enum class Endpoint : int {
  kGenerate,
  kCompletions,
  kChatCompletions,
  kAdmin,
  kOther,
  kCount
};

class ServerMetrics {
 public:
  // Upper bounds (seconds) of the latency histogram's buckets.
  static constexpr std::array<double, 10> kLatencyBuckets = {
      0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

  void RecordRequest(Endpoint endpoint, int http_status);
  // A finished generation: token counts and end-to-end latency.
  void RecordGeneration(int64_t prompt_tokens, int64_t completion_tokens,
                        double e2e_seconds, double first_token_seconds);
  void RecordDisconnect() { disconnects_.fetch_add(1); }

  std::string Prometheus(const EngineStats& engine, const ReloadStatus& reload,
                         const UpdateStreamStatus& streams) const;

 private:
  static constexpr int kEndpoints = static_cast<int>(Endpoint::kCount);
  std::array<std::atomic<int64_t>, kEndpoints> requests_{};
  std::array<std::atomic<int64_t>, kEndpoints> errors_{};
  std::atomic<int64_t> prompt_tokens_{0};
  std::atomic<int64_t> completion_tokens_{0};
  std::atomic<int64_t> generations_{0};
  std::atomic<int64_t> disconnects_{0};
  // Microseconds, so the sums stay integral atomics.
  std::atomic<int64_t> e2e_us_sum_{0};
  std::atomic<int64_t> first_token_us_sum_{0};
  std::array<std::atomic<int64_t>, kLatencyBuckets.size()> e2e_buckets_{};
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SERVER_SERVER_METRICS_H_
