// Datasets of prompts with reference answers, read from JSON lines, and the
// forms a completion may give its final answer in. GSM8K (gsm8k.h) is one
// such dataset: "question" and "answer" fields, answers ending "#### N".
#ifndef RLRT_TRAINER_BRIDGE_TASKS_DATASET_H_
#define RLRT_TRAINER_BRIDGE_TASKS_DATASET_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/tokenizer/chat_template.h"

namespace rlrt {

struct TaskExample {
  std::string prompt;  // The user turn.
  // The reference answer as the dataset writes it (a worked solution or
  // the bare answer); the SFT target.
  std::string answer;
  // The final answer, normalised (NormalizeAnswer); empty when the dataset
  // has no answers (a reward service may still score completions).
  std::string gold;
};

// Where a completion puts its final answer:
//   hashes  a number on a last line "#### <number>" (GSM8K)
//   boxed   the last \boxed{...} (MATH-style; any content, braces balanced)
//   plain   the whole completion is the answer
enum class AnswerFormat { kHashes, kBoxed, kPlain };
StatusOr<AnswerFormat> ParseAnswerFormat(std::string_view name);

// The final answer of `completion`, normalised; nullopt when it has none.
// Strict: the answer is where the format says it ends the text (hashes:
// the last non-empty line is exactly "#### <number>"; boxed: nothing but
// spaces, '.', '$' follows the last \boxed{}; plain: the trimmed text is
// not empty). Lenient: the answer may be anywhere (hashes: after the last
// "####", else the last number; boxed: the last \boxed{}).
std::optional<std::string> ExtractAnswer(std::string_view completion,
                                         AnswerFormat format, bool strict);

// The content of the last \boxed{...} with balanced braces.
std::optional<std::string> ExtractBoxed(std::string_view text);

// A final answer as compared with the gold one: a number as NormalizeNumber
// writes it ("1,234.50" -> "1234.5"); anything else trimmed, surrounding
// '$' and a trailing '.' dropped, runs of spaces made one, lower-cased.
std::string NormalizeAnswer(std::string_view text);

// The final answer a dataset's reference answer gives in `format`,
// normalised: all that follows its last "####" as one number (as GSM8K
// writes them), or its last \boxed{}; nullopt when it has none (always for
// plain).
std::optional<std::string> FinalAnswerOf(std::string_view answer,
                                         AnswerFormat format);

struct DatasetFields {
  std::string prompt_field = "question";
  std::string answer_field = "answer";  // Empty: the dataset has no answers.
  AnswerFormat format = AnswerFormat::kHashes;
  // The answer field must hold its final answer in `format` (GSM8K's
  // "#### N"); otherwise a field without it is taken whole as the answer.
  bool require_formatted_answer = false;
};

// Reads one JSON object per line. The prompt field must be a string; the
// answer field a string or a number. Errors name the file and the 1-based
// line; blank lines are skipped; a file without examples is an error.
StatusOr<std::vector<TaskExample>> LoadJsonlDataset(
    const std::string& path, const DatasetFields& fields);

// The system prompt asking for `format` (empty for plain).
std::string DefaultSystemPrompt(AnswerFormat format);

// `gold` written as `format` asks a completion to end: "#### 42",
// "\boxed{42}", or "42".
std::string FormattedAnswer(std::string_view gold, AnswerFormat format);

// The system prompt (when not empty) and the prompt as the user turn.
std::vector<ChatMessage> TaskMessages(const TaskExample& example,
                                      std::string_view system_prompt);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_TASKS_DATASET_H_
