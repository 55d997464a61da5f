// GSM8K: grade-school math word problems (github.com/openai/grade-school-math,
// data/train.jsonl and data/test.jsonl), one JSON object per line with a
// "question" and an "answer" whose last line is "#### <number>".
//
// The policy is asked to reason and end with the same form: a last line
// "#### <number>". That keeps one parser for the data and the completions,
// and lets supervised warm-starting train on the dataset's own answers.
#ifndef RLRT_TRAINER_BRIDGE_TASKS_GSM8K_H_
#define RLRT_TRAINER_BRIDGE_TASKS_GSM8K_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "trainer_bridge/tasks/dataset.h"

namespace rlrt {

// Reads a GSM8K jsonl file (LoadJsonlDataset with "question", "answer" and
// answers required to end in "#### <number>").
StatusOr<std::vector<TaskExample>> LoadGsm8k(const std::string& path);

// The system prompt asking for reasoning and a final "#### <number>" line.
extern const char kGsm8kSystemPrompt[];

// A number as GSM8K writes it, normalised: commas, '$', spaces and a
// leading '+' removed, trailing zeros after a decimal point dropped ("5.0"
// -> "5", "-3.50" -> "-3.5"). nullopt when it is not a number.
std::optional<std::string> NormalizeNumber(std::string_view text);

// The number on the completion's last non-empty line when that line is
// exactly "#### <number>" (strict form); nullopt otherwise.
std::optional<std::string> ExtractStrictAnswer(std::string_view completion);

// The number after the last "####" anywhere, else the last number in the
// text (lenient form); nullopt when there is none.
std::optional<std::string> ExtractLenientAnswer(std::string_view completion);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_TASKS_GSM8K_H_
