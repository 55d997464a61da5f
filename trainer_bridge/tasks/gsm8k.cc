#include "trainer_bridge/tasks/gsm8k.h"

#include <cctype>

#include "base/strings.h"

namespace rlrt {
namespace {

bool IsNumberChar(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) || c == ',' || c == '.';
}

// The length of the prefix of `text` written in the characters of a number
// after "####": digits, ',', '.', '-', '$', spaces, and a '+' before any
// digit, ',' or '.'. These are what NormalizeNumber accepts, so a
// completion is read exactly as the dataset's own answers are (a '+'
// anywhere else ends the number: "#### 5 + 3 = 8" answers 5).
size_t AnswerPrefixLength(std::string_view text) {
  bool seen_digits = false;
  size_t n = 0;
  for (; n < text.size(); ++n) {
    const char c = text[n];
    if (c == '+' && !seen_digits) continue;
    if (!IsNumberChar(c) && c != '-' && c != '$' && c != ' ') break;
    seen_digits = seen_digits || IsNumberChar(c);
  }
  return n;
}

// The last maximal run that looks like a number ("-1,234.5", "$12").
std::optional<std::string> LastNumber(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    while (end > 0 && !std::isdigit(static_cast<unsigned char>(text[end - 1])))
      --end;
    if (end == 0) return std::nullopt;
    size_t begin = end;
    while (begin > 0 && IsNumberChar(text[begin - 1])) --begin;
    if (begin > 0 && text[begin - 1] == '-') --begin;
    if (auto n = NormalizeNumber(text.substr(begin, end - begin))) return n;
    end = begin;
  }
  return std::nullopt;
}

}  // namespace

const char kGsm8kSystemPrompt[] =
    "You are a careful math tutor. Solve the problem step by step, then give "
    "the final answer on its own last line in the form \"#### <number>\", "
    "with no units.";

std::optional<std::string> NormalizeNumber(std::string_view text) {
  std::string s;
  for (char c : TrimWhitespace(text)) {
    if (c == ',' || c == '$' || c == ' ') continue;
    s.push_back(c);
  }
  if (!s.empty() && s.front() == '+') s.erase(0, 1);
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.erase(0, 1);
  }
  if (!s.empty() && s.back() == '.') s.pop_back();  // "12." ends a sentence.
  if (s.empty()) return std::nullopt;
  int dots = 0;
  for (char c : s) {
    if (c == '.') {
      ++dots;
    } else if (!std::isdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  if (dots > 1 || s == ".") return std::nullopt;
  if (dots == 1) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    // Nothing left means only zeros after the point (".0"): that is zero,
    // not an empty number.
    if (s.empty()) s = "0";
  }
  if (s.front() == '.') s.insert(0, "0");
  // Leading zeros ("007") carry no meaning.
  size_t first = 0;
  while (first + 1 < s.size() && s[first] == '0' && s[first + 1] != '.')
    ++first;
  s.erase(0, first);
  if (negative && s != "0") s.insert(0, "-");
  return s;
}

std::optional<std::string> ExtractStrictAnswer(std::string_view completion) {
  std::string_view rest = TrimWhitespace(completion);
  const size_t newline = rest.rfind('\n');
  std::string_view last = TrimWhitespace(
      newline == std::string_view::npos ? rest : rest.substr(newline + 1));
  if (last.substr(0, 4) != "####") return std::nullopt;
  last.remove_prefix(4);
  // Only the number may follow, written as a number (commas allowed).
  last = TrimWhitespace(last);
  if (AnswerPrefixLength(last) != last.size()) return std::nullopt;
  return NormalizeNumber(last);
}

std::optional<std::string> ExtractLenientAnswer(std::string_view completion) {
  const size_t marker = completion.rfind("####");
  if (marker != std::string_view::npos) {
    std::string_view after = TrimWhitespace(completion.substr(marker + 4));
    if (auto n = NormalizeNumber(after.substr(0, AnswerPrefixLength(after))))
      return n;
  }
  return LastNumber(completion);
}

StatusOr<std::vector<TaskExample>> LoadGsm8k(const std::string& path) {
  DatasetFields fields;  // "question", "answer", "#### N": the defaults.
  fields.require_formatted_answer = true;
  return LoadJsonlDataset(path, fields);
}

}  // namespace rlrt
