#include "trainer_bridge/tasks/rewards.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "trainer_bridge/tasks/gsm8k.h"

namespace rlrt {
namespace {

std::optional<std::string> Extract(std::string_view completion) {
  if (auto strict = ExtractStrictAnswer(completion)) return strict;
  return ExtractLenientAnswer(completion);
}

std::optional<double> ToDouble(const std::string& normalised) {
  char* end = nullptr;
  const double v = std::strtod(normalised.c_str(), &end);
  if (end == normalised.c_str() || *end != '\0' || !std::isfinite(v))
    return std::nullopt;
  return v;
}

}  // namespace

double StrictFormatReward(std::string_view completion) {
  return ExtractStrictAnswer(completion) ? 1.0 : 0.0;
}

double LenientFormatReward(std::string_view completion) {
  const size_t marker = completion.rfind("####");
  if (marker == std::string_view::npos) return 0.0;
  return ExtractLenientAnswer(completion.substr(marker)) ? 1.0 : 0.0;
}

double CorrectnessReward(std::string_view completion, std::string_view gold) {
  const std::optional<std::string> answer = Extract(completion);
  const std::optional<std::string> expected = NormalizeNumber(gold);
  return answer && expected && *answer == *expected ? 1.0 : 0.0;
}

double CloseAnswerReward(std::string_view completion, std::string_view gold) {
  const std::optional<std::string> answer = Extract(completion);
  const std::optional<std::string> expected = NormalizeNumber(gold);
  if (!answer || !expected || *answer == *expected) return 0.0;
  const std::optional<double> a = ToDouble(*answer);
  const std::optional<double> g = ToDouble(*expected);
  if (!a || !g) return 0.0;
  const double relative = std::fabs(*a - *g) / std::max(std::fabs(*g), 1.0);
  return std::max(0.0, 1.0 - relative);
}

RewardBreakdown ScoreGsm8k(std::string_view completion, std::string_view gold,
                           const RewardWeights& w) {
  RewardBreakdown r;
  r.strict_format = StrictFormatReward(completion);
  r.lenient_format = LenientFormatReward(completion);
  r.correctness = CorrectnessReward(completion, gold);
  r.close_answer = CloseAnswerReward(completion, gold);
  r.total = w.strict_format * r.strict_format +
            w.lenient_format * r.lenient_format +
            w.correctness * r.correctness + w.close_answer * r.close_answer;
  return r;
}

}  // namespace rlrt
