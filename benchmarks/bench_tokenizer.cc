// bench_tokenizer: Qwen3 encode speed on the first GSM8K test questions
// (microseconds per question; items_per_second is questions per second).
//   bench_tokenizer --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <glog/logging.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/tokenizer/tokenizer.h"

namespace rlrt {
namespace {

std::vector<std::string> Questions(size_t count) {
  std::ifstream in(RLRT_SHARED_DIR "/data/gsm8k/test.jsonl");
  CHECK(in.good()) << "GSM8K test.jsonl not found under " RLRT_SHARED_DIR;
  std::vector<std::string> out;
  std::string line;
  while (out.size() < count && std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    CHECK(!j.is_discarded() && j.contains("question"));
    out.push_back(j["question"].get<std::string>());
  }
  return out;
}

void BM_EncodeGsm8kQuestion(benchmark::State& state) {
  auto tokenizer = LoadTokenizer(RLRT_SHARED_DIR "/models/qwen3-tokenizer");
  CHECK(tokenizer.ok()) << tokenizer.status();
  const std::vector<std::string> questions = Questions(100);
  size_t i = 0, tokens = 0;
  for (auto _ : state) {
    tokens += (*tokenizer)->Encode(questions[i++ % questions.size()]).size();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["tokens_per_question"] =
      static_cast<double>(tokens) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_EncodeGsm8kQuestion)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace rlrt

BENCHMARK_MAIN();
