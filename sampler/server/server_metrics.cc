#include "sampler/server/server_metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <concepts>

namespace rlrt {
namespace {

constexpr const char* kEndpointNames[] = {"generate", "completions",
                                          "chat_completions", "admin", "other"};

template <std::integral T>
std::string Number(T value) {
  return std::to_string(value);
}

// The shortest text that reads back as `value`: a stream's default six
// digits would round a sum of many seconds.
std::string Number(double value) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, end);
}

void Family(std::string& out, std::string_view name, std::string_view type,
            std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help);
  out.append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
}

// `labels` is empty or `key="value",...` with values that need no escaping.
void Sample(std::string& out, std::string_view name, std::string_view labels,
            const std::string& value) {
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out.append(" ").append(value).append("\n");
}

std::string Label(std::string_view key, std::string_view value) {
  return std::string(key) + "=\"" + std::string(value) + "\"";
}

}  // namespace

void ServerMetrics::Histogram::Observe(double seconds) {
  const size_t bucket =
      std::lower_bound(bounds_.begin(), bounds_.end(), seconds) -
      bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(std::llround(seconds * 1e6), std::memory_order_relaxed);
}

void ServerMetrics::Histogram::Write(std::string& out, std::string_view name,
                                     std::string_view help) const {
  Family(out, name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  int64_t cumulative = 0;
  for (size_t b = 0; b < bounds_.size(); ++b) {
    cumulative += counts_[b].load(std::memory_order_relaxed);
    Sample(out, bucket, Label("le", Number(bounds_[b])), Number(cumulative));
  }
  cumulative += counts_.back().load(std::memory_order_relaxed);
  Sample(out, bucket, Label("le", "+Inf"), Number(cumulative));
  Sample(out, std::string(name) + "_sum", "",
         Number(sum_us_.load(std::memory_order_relaxed) / 1e6));
  Sample(out, std::string(name) + "_count", "", Number(cumulative));
}

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
  e2e_.Observe(e2e_seconds);
  if (completion_tokens > 0) first_token_.Observe(first_token_seconds);
}

std::string ServerMetrics::Prometheus(const EngineStats& engine,
                                      const ReloadStatus& reload,
                                      const UpdateStreamStatus& streams) const {
  std::string out;
  Family(out, "rlrt_requests_total", "counter", "HTTP requests by endpoint.");
  for (int i = 0; i < kEndpoints; ++i)
    Sample(out, "rlrt_requests_total", Label("endpoint", kEndpointNames[i]),
           Number(requests_[i].load()));
  Family(out, "rlrt_request_errors_total", "counter",
         "HTTP requests answered with status >= 400, by endpoint.");
  for (int i = 0; i < kEndpoints; ++i)
    Sample(out, "rlrt_request_errors_total",
           Label("endpoint", kEndpointNames[i]), Number(errors_[i].load()));
  Family(out, "rlrt_client_disconnects_total", "counter",
         "Streams whose client went away; the request was aborted.");
  Sample(out, "rlrt_client_disconnects_total", "", Number(disconnects_.load()));
  Family(out, "rlrt_prompt_tokens_total", "counter", "Prompt tokens served.");
  Sample(out, "rlrt_prompt_tokens_total", "", Number(prompt_tokens_.load()));
  Family(out, "rlrt_generation_tokens_total", "counter",
         "Completion tokens generated.");
  Sample(out, "rlrt_generation_tokens_total", "",
         Number(completion_tokens_.load()));
  e2e_.Write(out, "rlrt_e2e_latency_seconds",
             "Generation latency, submission to last token.");
  first_token_.Write(out, "rlrt_time_to_first_token_seconds",
                     "Time from submission to the first generated token.");
  Family(out, "rlrt_running_requests", "gauge", "Requests being decoded.");
  Sample(out, "rlrt_running_requests", "",
         Number(engine.load.running_requests));
  Family(out, "rlrt_waiting_requests", "gauge", "Requests queued.");
  Sample(out, "rlrt_waiting_requests", "",
         Number(engine.load.waiting_requests));
  Family(out, "rlrt_kv_cache_used_tokens", "gauge",
         "KV cache capacity in use, in tokens.");
  Sample(out, "rlrt_kv_cache_used_tokens", "",
         Number((engine.load.kv_pages_total - engine.load.kv_pages_free) *
                engine.load.page_size));
  Family(out, "rlrt_kv_cache_free_tokens", "gauge",
         "KV cache capacity free, in tokens.");
  Sample(out, "rlrt_kv_cache_free_tokens", "",
         Number(engine.load.kv_pages_free * engine.load.page_size));
  Family(out, "rlrt_weight_version", "gauge", "Weight version in force.");
  Sample(out, "rlrt_weight_version", "", Number(engine.weight_version));
  Family(out, "rlrt_weight_updates_total", "counter",
         "Weight updates applied (UpdateParams and reloads).");
  Sample(out, "rlrt_weight_updates_total", "", Number(engine.updates_applied));
  Family(out, "rlrt_weight_updates_refused_total", "counter",
         "Weight updates refused; the old weights kept serving.");
  Sample(out, "rlrt_weight_updates_refused_total", "",
         Number(engine.updates_refused));
  Family(out, "rlrt_reloads_total", "counter",
         "Checkpoint reloads by outcome.");
  Sample(out, "rlrt_reloads_total", Label("outcome", "done"),
         Number(reload.reloads_done));
  Sample(out, "rlrt_reloads_total", Label("outcome", "failed"),
         Number(reload.reloads_failed));
  Family(out, "rlrt_update_streams_total", "counter",
         "Streamed weight updates by outcome (failed: refused, broken off, "
         "superseded or abandoned).");
  Sample(out, "rlrt_update_streams_total", Label("outcome", "committed"),
         Number(streams.streams_committed));
  Sample(out, "rlrt_update_streams_total", Label("outcome", "failed"),
         Number(streams.streams_failed));
  Family(out, "rlrt_update_stream_received_bytes", "gauge",
         "Bytes staged by the stream in progress (0 when none is open).");
  Sample(out, "rlrt_update_stream_received_bytes", "",
         Number(streams.active ? streams.bytes_received : 0));
  Family(out, "rlrt_update_stall_max_seconds", "gauge",
         "Longest decode pause for a weight update.");
  Sample(out, "rlrt_update_stall_max_seconds", "",
         Number(engine.max_update_stall_ms / 1e3));
  return out;
}

}  // namespace rlrt
