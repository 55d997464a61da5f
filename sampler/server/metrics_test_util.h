// Reads the Prometheus text exposition back, for the tests of
// ServerMetrics and of a live server's /metrics: families with their
// TYPE and HELP, samples in order, and checks of the naming rules and of
// histograms that hold whatever the values.
#ifndef RLRT_SAMPLER_SERVER_METRICS_TEST_UTIL_H_
#define RLRT_SAMPLER_SERVER_METRICS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlrt::testing {

struct MetricSample {
  std::string name;
  std::string labels;  // Between the braces, as written.
  double value = 0;
};

struct MetricsText {
  std::map<std::string, std::string> types;  // Family name -> TYPE.
  std::map<std::string, std::string> helps;  // Family name -> HELP.
  std::vector<MetricSample> samples;         // In the order written.
  std::vector<std::string> bad_lines;        // Neither comment nor sample.

  // The value of `name{labels}`; NaN when there is no such sample.
  double Value(std::string_view name, std::string_view labels = "") const {
    for (const MetricSample& s : samples)
      if (s.name == name && s.labels == labels) return s.value;
    return std::numeric_limits<double>::quiet_NaN();
  }

  // The family a sample is part of: its own name, or the histogram whose
  // `_bucket`, `_sum` or `_count` it is; empty when none was declared.
  std::string FamilyOf(const std::string& sample) const {
    if (types.count(sample)) return sample;
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (!sample.ends_with(suffix)) continue;
      const std::string base = sample.substr(0, sample.size() - suffix.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
    return "";
  }

  // Histogram `name`'s buckets in order: (the `le` label, the count).
  std::vector<std::pair<std::string, double>> Buckets(
      const std::string& name) const {
    std::vector<std::pair<std::string, double>> out;
    for (const MetricSample& s : samples) {
      if (s.name != name + "_bucket") continue;
      const size_t at = s.labels.find("le=\"");
      if (at == std::string::npos) continue;
      const size_t end = s.labels.find('"', at + 4);
      out.emplace_back(s.labels.substr(at + 4, end - at - 4), s.value);
    }
    return out;
  }
};

inline MetricsText ParseMetricsText(const std::string& text) {
  MetricsText m;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    std::istringstream words(line);
    std::string hash, kind, name;
    if (line[0] == '#') {
      words >> hash >> kind >> name;
      std::string rest;
      std::getline(words, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      if (kind == "TYPE") m.types[name] = rest;
      if (kind == "HELP") m.helps[name] = rest;
      continue;
    }
    MetricSample s;
    const size_t brace = line.find('{');
    const size_t space = line.find(' ');
    size_t value_at = space;
    if (brace != std::string::npos && brace < space) {
      const size_t close = line.find('}', brace);
      if (close == std::string::npos) {
        m.bad_lines.push_back(line);
        continue;
      }
      s.name = line.substr(0, brace);
      s.labels = line.substr(brace + 1, close - brace - 1);
      value_at = close + 1;
    } else {
      s.name = line.substr(0, space);
    }
    if (value_at == std::string::npos || value_at >= line.size() ||
        line[value_at] != ' ') {
      m.bad_lines.push_back(line);
      continue;
    }
    const char* begin = line.c_str() + value_at + 1;
    char* end = nullptr;
    s.value = std::strtod(begin, &end);
    if (end == begin || *end != '\0') {
      m.bad_lines.push_back(line);
      continue;
    }
    m.samples.push_back(std::move(s));
  }
  return m;
}

// Prometheus's naming rules as this server follows them: every family has
// HELP and TYPE, counters and only counters end in `_total`, durations are
// in seconds (no abbreviated or scaled units), and every sample belongs to
// a declared family.
inline void ExpectPrometheusNaming(const MetricsText& m) {
  EXPECT_TRUE(m.bad_lines.empty()) << m.bad_lines.front();
  EXPECT_FALSE(m.types.empty());
  for (const auto& [name, type] : m.types) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(m.helps.count(name) && !m.helps.at(name).empty());
    EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram")
        << type;
    EXPECT_TRUE(name.starts_with("rlrt_"));
    EXPECT_EQ(name.find("_total"),
              type == "counter" ? name.size() - 6 : std::string::npos);
    if (type == "histogram") {
      EXPECT_TRUE(name.ends_with("_seconds"));
    } else {
      for (std::string_view reserved : {"_bucket", "_sum", "_count"})
        EXPECT_FALSE(name.ends_with(reserved));
    }
    std::istringstream words(name);
    for (std::string word; std::getline(words, word, '_');) {
      for (std::string_view unit :
           {"ms", "us", "ns", "s", "sec", "secs", "milliseconds",
            "microseconds", "minutes", "hours", "kb", "mb", "gb", "kib", "mib",
            "gib", "kilobytes", "megabytes", "gigabytes"})
        EXPECT_NE(word, unit);
    }
  }
  for (const auto& [name, help] : m.helps) EXPECT_TRUE(m.types.count(name));
  for (const MetricSample& s : m.samples)
    EXPECT_NE(m.FamilyOf(s.name), "") << s.name << " has no TYPE";
}

// A histogram scraped at any moment: bounds increasing up to +Inf, counts
// cumulative, +Inf equal to `_count`. Returns `_count`.
inline double ExpectConsistentHistogram(const MetricsText& m,
                                        const std::string& name) {
  SCOPED_TRACE(name);
  EXPECT_EQ(m.types.count(name) ? m.types.at(name) : "", "histogram");
  const auto buckets = m.Buckets(name);
  EXPECT_GE(buckets.size(), 2u);
  if (buckets.empty()) return -1;
  EXPECT_EQ(buckets.back().first, "+Inf");
  for (size_t b = 1; b < buckets.size(); ++b) {
    EXPECT_LT(std::strtod(buckets[b - 1].first.c_str(), nullptr),
              std::strtod(buckets[b].first.c_str(), nullptr))
        << buckets[b].first;
    EXPECT_LE(buckets[b - 1].second, buckets[b].second) << buckets[b].first;
  }
  const double count = m.Value(name + "_count");
  EXPECT_EQ(buckets.back().second, count);
  EXPECT_GE(m.Value(name + "_sum"), 0);
  return count;
}

}  // namespace rlrt::testing

#endif  // RLRT_SAMPLER_SERVER_METRICS_TEST_UTIL_H_
