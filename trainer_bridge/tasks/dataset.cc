#include "trainer_bridge/tasks/dataset.h"

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/json_limits.h"
#include "base/strings.h"
#include "trainer_bridge/tasks/gsm8k.h"

namespace rlrt {
namespace {

constexpr std::string_view kBoxed = "\\boxed{";

// The start of the last "\boxed{" whose braces close, and its content.
std::optional<std::pair<size_t, std::string_view>> LastBoxed(
    std::string_view text) {
  size_t from = text.size();
  while (from > 0) {
    const size_t at = text.rfind(kBoxed, from - 1);
    if (at == std::string_view::npos) return std::nullopt;
    int depth = 1;
    for (size_t i = at + kBoxed.size(); i < text.size(); ++i) {
      if (text[i] == '{') ++depth;
      if (text[i] == '}' && --depth == 0) {
        const size_t begin = at + kBoxed.size();
        return std::pair{at, text.substr(begin, i - begin)};
      }
    }
    from = at;  // Unclosed: try an earlier one.
  }
  return std::nullopt;
}

bool OnlyClosingPunctuation(std::string_view rest) {
  for (char c : rest)
    if (!std::isspace(static_cast<unsigned char>(c)) && c != '.' && c != '$')
      return false;
  return true;
}

}  // namespace

std::optional<std::string> FinalAnswerOf(std::string_view answer,
                                         AnswerFormat format) {
  switch (format) {
    case AnswerFormat::kHashes: {
      const size_t marker = answer.rfind("####");
      if (marker == std::string_view::npos) return std::nullopt;
      return NormalizeNumber(answer.substr(marker + 4));
    }
    case AnswerFormat::kBoxed: {
      auto boxed = LastBoxed(answer);
      if (!boxed) return std::nullopt;
      return NormalizeAnswer(boxed->second);
    }
    case AnswerFormat::kPlain:
      return std::nullopt;
  }
  return std::nullopt;
}

StatusOr<AnswerFormat> ParseAnswerFormat(std::string_view name) {
  if (name == "hashes") return AnswerFormat::kHashes;
  if (name == "boxed") return AnswerFormat::kBoxed;
  if (name == "plain") return AnswerFormat::kPlain;
  return InvalidArgumentError("unknown answer format '" + std::string(name) +
                              "' (hashes, boxed or plain)");
}

std::optional<std::string> ExtractBoxed(std::string_view text) {
  auto boxed = LastBoxed(text);
  if (!boxed) return std::nullopt;
  return std::string(boxed->second);
}

std::string NormalizeAnswer(std::string_view text) {
  std::string_view t = TrimWhitespace(text);
  if (auto number = NormalizeNumber(t)) return *number;
  while (!t.empty() && t.front() == '$') t.remove_prefix(1);
  while (!t.empty() && (t.back() == '$' || t.back() == '.')) t.remove_suffix(1);
  t = TrimWhitespace(t);
  if (auto number = NormalizeNumber(t)) return *number;
  std::string out;
  bool space = false;
  for (char c : t) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(
        static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

std::optional<std::string> ExtractAnswer(std::string_view completion,
                                         AnswerFormat format, bool strict) {
  switch (format) {
    case AnswerFormat::kHashes:
      return strict ? ExtractStrictAnswer(completion)
                    : ExtractLenientAnswer(completion);
    case AnswerFormat::kBoxed: {
      auto boxed = LastBoxed(completion);
      if (!boxed) return std::nullopt;
      if (strict) {
        const size_t end =
            boxed->first + kBoxed.size() + boxed->second.size() + 1;
        if (!OnlyClosingPunctuation(completion.substr(end)))
          return std::nullopt;
      }
      return NormalizeAnswer(boxed->second);
    }
    case AnswerFormat::kPlain: {
      std::string answer = NormalizeAnswer(completion);
      if (answer.empty()) return std::nullopt;
      return answer;
    }
  }
  return std::nullopt;
}

StatusOr<std::vector<TaskExample>> LoadJsonlDataset(
    const std::string& path, const DatasetFields& fields) {
  if (fields.prompt_field.empty())
    return InvalidArgumentError("the dataset's prompt field name is empty");
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot open dataset file " + path);
  std::vector<TaskExample> examples;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    const std::string where = path + ":" + std::to_string(number);
    if (TrimWhitespace(line).empty()) continue;
    RETURN_IF_ERROR(CheckJsonDepth(line, where));
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return InvalidArgumentError(where + ": not a JSON object");
    const auto prompt = j.find(fields.prompt_field);
    if (prompt == j.end() || !prompt->is_string())
      return InvalidArgumentError(where + ": missing string field \"" +
                                  fields.prompt_field + "\"");
    TaskExample e{prompt->get<std::string>(), "", ""};
    if (!fields.answer_field.empty()) {
      const auto answer = j.find(fields.answer_field);
      if (answer == j.end() || !(answer->is_string() || answer->is_number()))
        return InvalidArgumentError(where + ": missing string field \"" +
                                    fields.answer_field + "\"");
      e.answer =
          answer->is_string() ? answer->get<std::string>() : answer->dump();
      const std::optional<std::string> gold =
          FinalAnswerOf(e.answer, fields.format);
      if (!gold && fields.require_formatted_answer) {
        return InvalidArgumentError(where + ": answer does not end in \"" +
                                    FormattedAnswer("<number>", fields.format) +
                                    "\"");
      }
      e.gold = gold ? *gold : NormalizeAnswer(e.answer);
    }
    examples.push_back(std::move(e));
  }
  if (in.bad()) return DataLossError("error reading " + path);
  if (examples.empty()) return InvalidArgumentError(path + ": no examples");
  return examples;
}

std::string DefaultSystemPrompt(AnswerFormat format) {
  switch (format) {
    case AnswerFormat::kHashes:
      return kGsm8kSystemPrompt;
    case AnswerFormat::kBoxed:
      return "Solve the problem step by step, then write the final answer "
             "as \\boxed{<answer>} at the very end.";
    case AnswerFormat::kPlain:
      return "";
  }
  return "";
}

std::string FormattedAnswer(std::string_view gold, AnswerFormat format) {
  switch (format) {
    case AnswerFormat::kHashes:
      return "#### " + std::string(gold);
    case AnswerFormat::kBoxed:
      return "\\boxed{" + std::string(gold) + "}";
    case AnswerFormat::kPlain:
      return std::string(gold);
  }
  return std::string(gold);
}

std::vector<ChatMessage> TaskMessages(const TaskExample& example,
                                      std::string_view system_prompt) {
  std::vector<ChatMessage> messages;
  if (!system_prompt.empty())
    messages.push_back({"system", std::string(system_prompt), std::nullopt});
  messages.push_back({"user", example.prompt, std::nullopt});
  return messages;
}

}  // namespace rlrt
