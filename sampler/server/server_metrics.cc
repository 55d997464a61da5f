#include "sampler/server/server_metrics.h"

#include <sstream>

namespace rlrt {
namespace {

constexpr const char* kEndpointNames[] = {"generate", "completions",
                                          "chat_completions", "admin", "other"};

void Metric(std::ostringstream& out, const char* name, const char* type,
            const char* help) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type
      << "\n";
}

}  // namespace

void ServerMetrics::RecordRequest(Endpoint endpoint, int http_status) {
  const int i = static_cast<int>(endpoint);
  requests_[i].fetch_add(1, std::memory_order_relaxed);
  if (http_status >= 400) errors_[i].fetch_add(1, std::memory_order_relaxed);
}

void ServerMetrics::RecordGeneration(int64_t prompt_tokens,
                                     int64_t completion_tokens,
                                     double e2e_seconds,
                                     double first_token_seconds) {
  prompt_tokens_.fetch_add(prompt_tokens, std::memory_order_relaxed);
  completion_tokens_.fetch_add(completion_tokens, std::memory_order_relaxed);
  generations_.fetch_add(1, std::memory_order_relaxed);
  e2e_us_sum_.fetch_add(static_cast<int64_t>(e2e_seconds * 1e6),
                        std::memory_order_relaxed);
  first_token_us_sum_.fetch_add(static_cast<int64_t>(first_token_seconds * 1e6),
                                std::memory_order_relaxed);
  for (size_t b = 0; b < kLatencyBuckets.size(); ++b) {
    if (e2e_seconds <= kLatencyBuckets[b])
      e2e_buckets_[b].fetch_add(1, std::memory_order_relaxed);
  }
}

std::string ServerMetrics::Prometheus(const EngineStats& engine,
                                      const ReloadStatus& reload,
                                      const UpdateStreamStatus& streams) const {
  std::ostringstream out;
  Metric(out, "rlrt_requests_total", "counter", "HTTP requests by endpoint.");
  for (int i = 0; i < kEndpoints; ++i)
    out << "rlrt_requests_total{endpoint=\"" << kEndpointNames[i] << "\"} "
        << requests_[i].load() << "\n";
  Metric(out, "rlrt_request_errors_total", "counter",
         "HTTP requests answered with status >= 400, by endpoint.");
  for (int i = 0; i < kEndpoints; ++i)
    out << "rlrt_request_errors_total{endpoint=\"" << kEndpointNames[i]
        << "\"} " << errors_[i].load() << "\n";
  Metric(out, "rlrt_client_disconnects_total", "counter",
         "Streams whose client went away; the request was aborted.");
  out << "rlrt_client_disconnects_total " << disconnects_.load() << "\n";
  Metric(out, "rlrt_prompt_tokens_total", "counter", "Prompt tokens served.");
  out << "rlrt_prompt_tokens_total " << prompt_tokens_.load() << "\n";
  Metric(out, "rlrt_generation_tokens_total", "counter",
         "Completion tokens generated.");
  out << "rlrt_generation_tokens_total " << completion_tokens_.load() << "\n";
  Metric(out, "rlrt_e2e_latency_seconds", "histogram",
         "Request latency, submission to last token.");
  const int64_t count = generations_.load();
  for (size_t b = 0; b < kLatencyBuckets.size(); ++b)
    out << "rlrt_e2e_latency_seconds_bucket{le=\"" << kLatencyBuckets[b]
        << "\"} " << e2e_buckets_[b].load() << "\n";
  out << "rlrt_e2e_latency_seconds_bucket{le=\"+Inf\"} " << count << "\n";
  out << "rlrt_e2e_latency_seconds_sum " << e2e_us_sum_.load() / 1e6 << "\n";
  out << "rlrt_e2e_latency_seconds_count " << count << "\n";
  Metric(out, "rlrt_time_to_first_token_seconds_sum", "counter",
         "Sum of times to the first token.");
  out << "rlrt_time_to_first_token_seconds_sum "
      << first_token_us_sum_.load() / 1e6 << "\n";
  Metric(out, "rlrt_running_requests", "gauge", "Requests being decoded.");
  out << "rlrt_running_requests " << engine.load.running_requests << "\n";
  Metric(out, "rlrt_waiting_requests", "gauge", "Requests queued.");
  out << "rlrt_waiting_requests " << engine.load.waiting_requests << "\n";
  Metric(out, "rlrt_kv_tokens_used", "gauge", "KV cache tokens in use.");
  out << "rlrt_kv_tokens_used "
      << (engine.load.kv_pages_total - engine.load.kv_pages_free) *
             engine.load.page_size
      << "\n";
  Metric(out, "rlrt_kv_tokens_free", "gauge", "KV cache tokens free.");
  out << "rlrt_kv_tokens_free "
      << engine.load.kv_pages_free * engine.load.page_size << "\n";
  Metric(out, "rlrt_weight_version", "gauge", "Weight version in force.");
  out << "rlrt_weight_version " << engine.weight_version << "\n";
  Metric(out, "rlrt_weight_updates_total", "counter",
         "Weight updates applied (UpdateParams and reloads).");
  out << "rlrt_weight_updates_total " << engine.updates_applied << "\n";
  Metric(out, "rlrt_weight_updates_refused_total", "counter",
         "Weight updates refused; the old weights kept serving.");
  out << "rlrt_weight_updates_refused_total " << engine.updates_refused << "\n";
  Metric(out, "rlrt_reloads_total", "counter",
         "Checkpoint reloads by outcome.");
  out << "rlrt_reloads_total{outcome=\"done\"} " << reload.reloads_done << "\n";
  out << "rlrt_reloads_total{outcome=\"failed\"} " << reload.reloads_failed
      << "\n";
  Metric(out, "rlrt_update_streams_total", "counter",
         "Streamed weight updates by outcome (failed: refused, broken off, "
         "superseded or abandoned).");
  out << "rlrt_update_streams_total{outcome=\"committed\"} "
      << streams.streams_committed << "\n";
  out << "rlrt_update_streams_total{outcome=\"failed\"} "
      << streams.streams_failed << "\n";
  Metric(out, "rlrt_update_stream_bytes_received", "gauge",
         "Bytes staged by the stream in progress (0 when none is open).");
  out << "rlrt_update_stream_bytes_received "
      << (streams.active ? streams.bytes_received : 0) << "\n";
  Metric(out, "rlrt_update_stall_max_ms", "gauge",
         "Longest decode pause for a weight update.");
  out << "rlrt_update_stall_max_ms " << engine.max_update_stall_ms << "\n";
  return out.str();
}

}  // namespace rlrt
