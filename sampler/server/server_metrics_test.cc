#include "sampler/server/server_metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "sampler/server/metrics_test_util.h"

namespace rlrt {
namespace {

using testing::ExpectConsistentHistogram;
using testing::ExpectPrometheusNaming;
using testing::MetricsText;
using testing::ParseMetricsText;

MetricsText Scrape(const ServerMetrics& metrics, EngineStats engine = {},
                   ReloadStatus reload = {}, UpdateStreamStatus streams = {}) {
  return ParseMetricsText(metrics.Prometheus(engine, reload, streams));
}

// Every family by name and type: a rename shows up here, and scrapers and
// dashboards must follow it.
TEST(ServerMetricsTest, FamiliesAreNamedByPrometheusRules) {
  const MetricsText m = Scrape(ServerMetrics());
  const std::map<std::string, std::string> want = {
      {"rlrt_requests_total", "counter"},
      {"rlrt_request_errors_total", "counter"},
      {"rlrt_client_disconnects_total", "counter"},
      {"rlrt_prompt_tokens_total", "counter"},
      {"rlrt_generation_tokens_total", "counter"},
      {"rlrt_e2e_latency_seconds", "histogram"},
      {"rlrt_time_to_first_token_seconds", "histogram"},
      {"rlrt_running_requests", "gauge"},
      {"rlrt_waiting_requests", "gauge"},
      {"rlrt_kv_cache_used_tokens", "gauge"},
      {"rlrt_kv_cache_free_tokens", "gauge"},
      {"rlrt_weight_version", "gauge"},
      {"rlrt_weight_updates_total", "counter"},
      {"rlrt_weight_updates_refused_total", "counter"},
      {"rlrt_reloads_total", "counter"},
      {"rlrt_update_streams_total", "counter"},
      {"rlrt_update_stream_received_bytes", "gauge"},
      {"rlrt_update_stall_max_seconds", "gauge"},
  };
  EXPECT_EQ(m.types, want);
  ExpectPrometheusNaming(m);
  // Before any generation the histograms are there, empty.
  EXPECT_EQ(ExpectConsistentHistogram(m, "rlrt_e2e_latency_seconds"), 0);
  EXPECT_EQ(ExpectConsistentHistogram(m, "rlrt_time_to_first_token_seconds"),
            0);
}

TEST(ServerMetricsTest, HistogramsCountEachGenerationInItsBucket) {
  ServerMetrics metrics;
  // (e2e, first token): on a bound, between bounds, above every bound.
  metrics.RecordGeneration(3, 4, 0.05, 0.005);
  metrics.RecordGeneration(3, 4, 0.2, 0.03);
  metrics.RecordGeneration(3, 4, 1000, 100);
  // No token, so no time to a first one; its latency still counts.
  metrics.RecordGeneration(3, 0, 0.001, 0);
  const MetricsText m = Scrape(metrics);
  ExpectPrometheusNaming(m);

  EXPECT_EQ(ExpectConsistentHistogram(m, "rlrt_e2e_latency_seconds"), 4);
  EXPECT_EQ(m.Value("rlrt_e2e_latency_seconds_bucket", "le=\"0.01\""), 1);
  EXPECT_EQ(m.Value("rlrt_e2e_latency_seconds_bucket", "le=\"0.05\""), 2);
  EXPECT_EQ(m.Value("rlrt_e2e_latency_seconds_bucket", "le=\"0.1\""), 2);
  EXPECT_EQ(m.Value("rlrt_e2e_latency_seconds_bucket", "le=\"0.25\""), 3);
  EXPECT_EQ(m.Value("rlrt_e2e_latency_seconds_bucket", "le=\"30\""), 3);
  EXPECT_EQ(m.Value("rlrt_e2e_latency_seconds_bucket", "le=\"+Inf\""), 4);
  EXPECT_DOUBLE_EQ(m.Value("rlrt_e2e_latency_seconds_sum"), 1000.251);

  EXPECT_EQ(ExpectConsistentHistogram(m, "rlrt_time_to_first_token_seconds"),
            3);
  EXPECT_EQ(m.Value("rlrt_time_to_first_token_seconds_bucket", "le=\"0.005\""),
            1);
  EXPECT_EQ(m.Value("rlrt_time_to_first_token_seconds_bucket", "le=\"0.025\""),
            1);
  EXPECT_EQ(m.Value("rlrt_time_to_first_token_seconds_bucket", "le=\"0.05\""),
            2);
  EXPECT_EQ(m.Value("rlrt_time_to_first_token_seconds_bucket", "le=\"30\""), 2);
  EXPECT_DOUBLE_EQ(m.Value("rlrt_time_to_first_token_seconds_sum"), 100.035);

  EXPECT_EQ(m.Value("rlrt_prompt_tokens_total"), 12);
  EXPECT_EQ(m.Value("rlrt_generation_tokens_total"), 12);
}

// A long-running server's sums keep every digit (microseconds), where a
// stream's default precision would print 1.23457e+06.
TEST(ServerMetricsTest, SumsKeepTheirDigits) {
  ServerMetrics metrics;
  metrics.RecordGeneration(1, 1, 1234567.891, 0.25);
  const std::string text = metrics.Prometheus({}, {}, {});
  EXPECT_NE(text.find("\nrlrt_e2e_latency_seconds_sum 1234567.891\n"),
            std::string::npos)
      << text;
}

TEST(ServerMetricsTest, GaugesAndCountersInBaseUnits) {
  ServerMetrics metrics;
  metrics.RecordRequest(Endpoint::kGenerate, 200);
  metrics.RecordRequest(Endpoint::kGenerate, 400);
  metrics.RecordRequest(Endpoint::kAdmin, 503);
  metrics.RecordDisconnect();
  EngineStats engine;
  engine.load.running_requests = 2;
  engine.load.waiting_requests = 5;
  engine.load.kv_pages_total = 10;
  engine.load.kv_pages_free = 4;
  engine.load.page_size = 16;
  engine.weight_version = 7;
  engine.updates_applied = 3;
  engine.updates_refused = 1;
  engine.max_update_stall_ms = 250;
  ReloadStatus reload;
  reload.reloads_done = 2;
  reload.reloads_failed = 1;
  UpdateStreamStatus streams;
  streams.active = true;
  streams.bytes_received = 1 << 20;
  streams.streams_committed = 4;
  streams.streams_failed = 2;
  const MetricsText m = Scrape(metrics, engine, reload, streams);
  ExpectPrometheusNaming(m);
  EXPECT_EQ(m.Value("rlrt_requests_total", "endpoint=\"generate\""), 2);
  EXPECT_EQ(m.Value("rlrt_requests_total", "endpoint=\"other\""), 0);
  EXPECT_EQ(m.Value("rlrt_request_errors_total", "endpoint=\"generate\""), 1);
  EXPECT_EQ(m.Value("rlrt_request_errors_total", "endpoint=\"admin\""), 1);
  EXPECT_EQ(m.Value("rlrt_client_disconnects_total"), 1);
  EXPECT_EQ(m.Value("rlrt_running_requests"), 2);
  EXPECT_EQ(m.Value("rlrt_waiting_requests"), 5);
  EXPECT_EQ(m.Value("rlrt_kv_cache_used_tokens"), 96);
  EXPECT_EQ(m.Value("rlrt_kv_cache_free_tokens"), 64);
  EXPECT_EQ(m.Value("rlrt_weight_version"), 7);
  EXPECT_EQ(m.Value("rlrt_weight_updates_total"), 3);
  EXPECT_EQ(m.Value("rlrt_weight_updates_refused_total"), 1);
  EXPECT_EQ(m.Value("rlrt_reloads_total", "outcome=\"done\""), 2);
  EXPECT_EQ(m.Value("rlrt_reloads_total", "outcome=\"failed\""), 1);
  EXPECT_EQ(m.Value("rlrt_update_streams_total", "outcome=\"committed\""), 4);
  EXPECT_EQ(m.Value("rlrt_update_streams_total", "outcome=\"failed\""), 2);
  EXPECT_EQ(m.Value("rlrt_update_stream_received_bytes"), 1 << 20);
  EXPECT_EQ(m.Value("rlrt_update_stall_max_seconds"), 0.25);
  streams.active = false;
  EXPECT_EQ(Scrape(metrics, engine, reload, streams)
                .Value("rlrt_update_stream_received_bytes"),
            0);
}

}  // namespace
}  // namespace rlrt
