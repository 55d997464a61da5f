#include "trainer_bridge/tasks/rewards.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "trainer_bridge/tasks/gsm8k.h"

namespace rlrt {
namespace {

std::optional<std::string> Extract(std::string_view completion,
                                   AnswerFormat format) {
  if (auto strict = ExtractAnswer(completion, format, /*strict=*/true))
    return strict;
  return ExtractAnswer(completion, format, /*strict=*/false);
}

std::optional<double> ToDouble(const std::string& normalised) {
  char* end = nullptr;
  const double v = std::strtod(normalised.c_str(), &end);
  if (end == normalised.c_str() || *end != '\0' || !std::isfinite(v))
    return std::nullopt;
  return v;
}

}  // namespace

double StrictFormatReward(std::string_view completion, AnswerFormat format) {
  return ExtractAnswer(completion, format, /*strict=*/true) ? 1.0 : 0.0;
}

double LenientFormatReward(std::string_view completion, AnswerFormat format) {
  switch (format) {
    case AnswerFormat::kHashes: {
      const size_t marker = completion.rfind("####");
      if (marker == std::string_view::npos) return 0.0;
      return ExtractLenientAnswer(completion.substr(marker)) ? 1.0 : 0.0;
    }
    case AnswerFormat::kBoxed:
      return ExtractBoxed(completion) ? 1.0 : 0.0;
    case AnswerFormat::kPlain:
      return 0.0;
  }
  return 0.0;
}

double CorrectnessReward(std::string_view completion, std::string_view gold,
                         AnswerFormat format) {
  const std::optional<std::string> answer = Extract(completion, format);
  const std::string expected = NormalizeAnswer(gold);
  return answer && !expected.empty() && *answer == expected ? 1.0 : 0.0;
}

double CloseAnswerReward(std::string_view completion, std::string_view gold,
                         AnswerFormat format) {
  const std::optional<std::string> answer = Extract(completion, format);
  const std::optional<std::string> expected = NormalizeNumber(gold);
  if (!answer || !expected || *answer == *expected) return 0.0;
  const std::optional<double> a = ToDouble(*answer);
  const std::optional<double> g = ToDouble(*expected);
  if (!a || !g) return 0.0;
  const double relative = std::fabs(*a - *g) / std::max(std::fabs(*g), 1.0);
  return std::max(0.0, 1.0 - relative);
}

double LengthPenalty(int64_t tokens, int64_t target) {
  if (target < 1 || tokens <= target) return 0.0;
  return -std::min(1.0, double(tokens - target) / double(target));
}

StatusOr<RewardScorer> RewardScorer::Create(const RewardOptions& options) {
  for (double w :
       {options.strict_format, options.lenient_format, options.correctness,
        options.close_answer, options.regex, options.length}) {
    if (!std::isfinite(w))
      return InvalidArgumentError("reward weights must be finite");
  }
  if (options.regex != 0 && options.regex_pattern.empty())
    return InvalidArgumentError("the regex reward has a weight but no pattern");
  if (options.length != 0 && options.length_target < 1)
    return InvalidArgumentError(
        "the length penalty has a weight but no target length (>= 1 token)");
  RewardScorer scorer(options);
  if (!options.regex_pattern.empty()) {
    try {
      scorer.regex_ = std::make_shared<const std::regex>(
          options.regex_pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return InvalidArgumentError("bad reward regex '" + options.regex_pattern +
                                  "': " + e.what());
    }
  }
  return scorer;
}

RewardScorer::Scored RewardScorer::Score(std::string_view completion,
                                         int64_t tokens,
                                         std::string_view gold) const {
  const RewardOptions& o = options_;
  Scored s;
  auto add = [&](const char* name, double weight, double value) {
    s.parts.emplace_back(name, value);
    s.total += weight * value;
  };
  add("strict_format", o.strict_format,
      StrictFormatReward(completion, o.format));
  add("lenient_format", o.lenient_format,
      LenientFormatReward(completion, o.format));
  add("correctness", o.correctness,
      CorrectnessReward(completion, gold, o.format));
  add("close_answer", o.close_answer,
      CloseAnswerReward(completion, gold, o.format));
  if (regex_ != nullptr) {
    bool hit = false;
    try {
      hit = std::regex_search(completion.begin(), completion.end(), *regex_);
    } catch (const std::regex_error&) {
      // Too complex for this completion (std::regex's own limits): no hit.
    }
    add("regex", o.regex, hit ? 1.0 : 0.0);
  }
  if (o.length != 0)
    add("length", o.length, LengthPenalty(tokens, o.length_target));
  return s;
}

}  // namespace rlrt
