// The rollout server's counters and their Prometheus text exposition.
// Counters are atomics bumped by the HTTP handler threads; gauges (load,
// weight version, reloads) are read from the engine and the reloader when
// scraped. Names follow Prometheus's rules: base units (seconds, bytes) as
// the last word, `_total` on counters and only on them.
#ifndef RLRT_SAMPLER_SERVER_SERVER_METRICS_H_
#define RLRT_SAMPLER_SERVER_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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
  // Upper bounds (seconds) of the end-to-end latency histogram's buckets.
  static constexpr std::array<double, 10> kLatencyBuckets = {
      0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  // The first token comes after the prefill alone, so the time-to-first-
  // token buckets start finer.
  static constexpr std::array<double, 12> kFirstTokenBuckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

  void RecordRequest(Endpoint endpoint, int http_status);
  // A finished generation: token counts, end-to-end latency and time to
  // the first token (ignored when it produced no token: there was none).
  void RecordGeneration(int64_t prompt_tokens, int64_t completion_tokens,
                        double e2e_seconds, double first_token_seconds);
  void RecordDisconnect() { disconnects_.fetch_add(1); }

  std::string Prometheus(const EngineStats& engine, const ReloadStatus& reload,
                         const UpdateStreamStatus& streams) const;

 private:
  // Durations in buckets. Each observation bumps one non-cumulative count
  // (the last is above every bound); a scrape sums them, so a scrape that
  // races an observation still sees cumulative buckets whose +Inf equals
  // `_count`.
  class Histogram {
   public:
    explicit Histogram(std::span<const double> bounds)
        : bounds_(bounds), counts_(bounds.size() + 1) {}
    void Observe(double seconds);
    void Write(std::string& out, std::string_view name,
               std::string_view help) const;

   private:
    std::span<const double> bounds_;
    std::vector<std::atomic<int64_t>> counts_;
    // Microseconds, so the sum stays an integral atomic.
    std::atomic<int64_t> sum_us_{0};
  };

  static constexpr int kEndpoints = static_cast<int>(Endpoint::kCount);
  std::array<std::atomic<int64_t>, kEndpoints> requests_{};
  std::array<std::atomic<int64_t>, kEndpoints> errors_{};
  std::atomic<int64_t> prompt_tokens_{0};
  std::atomic<int64_t> completion_tokens_{0};
  std::atomic<int64_t> disconnects_{0};
  Histogram e2e_{kLatencyBuckets};
  Histogram first_token_{kFirstTokenBuckets};
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SERVER_SERVER_METRICS_H_
