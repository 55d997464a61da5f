// Fuzzes the GSM8K side of the RL task: the jsonl reader (LoadGsm8k on a
// file holding the input), the answer extractors and the reward functions
// (the input as a completion, its first line also as the gold answer).
// Contracts:
//  - NormalizeNumber returns nullopt or a canonical number
//    (-?(0|[1-9][0-9]*)(.[0-9]*[1-9])?, never "-0") that it maps to itself;
//    both extractors return only such numbers;
//  - a strict answer is also the lenient answer (the strict form is a
//    special case of the lenient one);
//  - every reward is in [0, 1], the total is their weighted sum, and an
//    answer graded against itself is correct (and so earns no partial
//    credit);
//  - LoadGsm8k returns an error or one example per non-blank line, each
//    with a canonical final answer that its own worked answer earns full
//    correctness for (supervised warm-starting trains on those answers).
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_fixtures.h"
#include "trainer_bridge/tasks/gsm8k.h"
#include "trainer_bridge/tasks/rewards.h"

namespace rlrt::fuzz {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The canonical form NormalizeNumber promises, checked by hand rather than
// by the code under test.
bool IsCanonicalNumber(std::string_view s) {
  if (s.starts_with('-')) {
    s.remove_prefix(1);
    if (s == "0") return false;
  }
  const size_t dot = s.find('.');
  const std::string_view integer = s.substr(0, dot);
  if (integer.empty() || (integer.size() > 1 && integer[0] == '0')) {
    return false;
  }
  for (char c : integer) {
    if (!IsDigit(c)) return false;
  }
  if (dot == std::string_view::npos) return true;
  const std::string_view fraction = s.substr(dot + 1);
  if (fraction.empty() || fraction.back() == '0') return false;
  for (char c : fraction) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

void CheckNumber(const std::optional<std::string>& n, const char* what) {
  if (!n) return;
  FUZZ_CHECK(IsCanonicalNumber(*n), "%s gave '%s'", what, n->c_str());
  const std::optional<std::string> again = NormalizeNumber(*n);
  FUZZ_CHECK(again == n, "%s: '%s' is not a fixed point", what, n->c_str());
}

bool InUnitRange(double r) { return r >= 0.0 && r <= 1.0; }

void CheckCompletion(std::string_view completion, std::string_view gold) {
  CheckNumber(NormalizeNumber(completion), "NormalizeNumber");
  CheckNumber(NormalizeNumber(gold), "NormalizeNumber");
  const std::optional<std::string> strict = ExtractStrictAnswer(completion);
  const std::optional<std::string> lenient = ExtractLenientAnswer(completion);
  CheckNumber(strict, "ExtractStrictAnswer");
  CheckNumber(lenient, "ExtractLenientAnswer");
  if (strict) {
    FUZZ_CHECK(lenient == strict, "strict '%s' but lenient '%s'",
               strict->c_str(), lenient ? lenient->c_str() : "(none)");
  }

  const RewardOptions weights;
  const StatusOr<RewardScorer> scorer = RewardScorer::Create(weights);
  FUZZ_CHECK(scorer.ok(), "default reward options refused");
  const RewardScorer::Scored scored = scorer->Score(completion, 0, gold);
  FUZZ_CHECK(scored.parts.size() == 4, "four reward parts");
  struct {
    double strict_format, lenient_format, correctness, close_answer, total;
  } r = {scored.parts[0].second, scored.parts[1].second, scored.parts[2].second,
         scored.parts[3].second, scored.total};
  for (double v :
       {r.strict_format, r.lenient_format, r.correctness, r.close_answer}) {
    FUZZ_CHECK(InUnitRange(v), "reward %g outside [0, 1]", v);
  }
  FUZZ_CHECK(r.strict_format == (strict ? 1.0 : 0.0), "strict reward");
  FUZZ_CHECK(r.strict_format <= r.lenient_format,
             "strict format without lenient format");
  FUZZ_CHECK(r.correctness == 0.0 || r.close_answer == 0.0,
             "exact answer also paid as close");
  const double total = weights.strict_format * r.strict_format +
                       weights.lenient_format * r.lenient_format +
                       weights.correctness * r.correctness +
                       weights.close_answer * r.close_answer;
  FUZZ_CHECK(std::isfinite(r.total) && r.total == total, "total");

  // Grading an answer against itself.
  if (const std::optional<std::string> answer = strict ? strict : lenient) {
    FUZZ_CHECK(CorrectnessReward(completion, *answer) == 1.0,
               "'%s' is not correct against itself", answer->c_str());
    FUZZ_CHECK(CloseAnswerReward(completion, *answer) == 0.0,
               "partial credit for an exact answer");
  }
}

size_t CountNonBlankLines(std::string_view text) {
  size_t count = 0;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    bool blank = true;
    for (char c : line) {
      blank = blank && std::isspace(static_cast<unsigned char>(c));
    }
    count += !blank;
    if (newline == std::string_view::npos) break;
    text.remove_prefix(newline + 1);
  }
  return count;
}

void CheckLoad(std::string_view input) {
  static const std::filesystem::path* const file =
      new std::filesystem::path(ScratchDir("gsm8k") / "data.jsonl");
  WriteFileOrDie(*file, input);
  StatusOr<std::vector<TaskExample>> examples = LoadGsm8k(file->string());
  if (!examples.ok()) {
    FUZZ_CHECK(examples.status().code() != StatusCode::kInternal, "%s",
               examples.status().ToString().c_str());
    return;
  }
  FUZZ_CHECK(examples->size() == CountNonBlankLines(input),
             "%zu examples from %zu lines", examples->size(),
             CountNonBlankLines(input));
  for (const TaskExample& e : *examples) {
    FUZZ_CHECK(IsCanonicalNumber(e.gold), "final answer '%s'", e.gold.c_str());
    FUZZ_CHECK(CorrectnessReward(e.answer, e.gold) == 1.0,
               "the dataset's own answer is graded wrong (final '%s')",
               e.gold.c_str());
    FUZZ_CHECK(TaskMessages(e, kGsm8kSystemPrompt).size() == 2, "messages");
  }
}

}  // namespace
}  // namespace rlrt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  rlrt::fuzz::CheckCompletion(input, input.substr(0, newline));
  rlrt::fuzz::CheckLoad(input);
  return 0;
}
