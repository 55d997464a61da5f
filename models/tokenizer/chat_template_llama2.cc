// The Llama 2 chat template, "[INST]" (see chat_template.h).
#include <string>

#include "models/tokenizer/chat_template.h"
#include "models/tokenizer/chat_template_internal.h"
#include "models/tokenizer/utf8.h"

namespace rlrt {
namespace {

constexpr std::string_view kName = "Llama 2 chat template";
constexpr std::string_view kBos = "<s>";
constexpr std::string_view kEos = "</s>";

// The code point of the valid UTF-8 character `c` (1-4 bytes).
char32_t DecodeChar(std::string_view c) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(c[i]); };
  switch (c.size()) {
    case 1:
      return byte(0);
    case 2:
      return (char32_t{byte(0)} & 0x1F) << 6 | (byte(1) & 0x3F);
    case 3:
      return (char32_t{byte(0)} & 0x0F) << 12 | (byte(1) & 0x3F) << 6 |
             (byte(2) & 0x3F);
    default:
      return (char32_t{byte(0)} & 0x07) << 18 | (byte(1) & 0x3F) << 12 |
             (byte(2) & 0x3F) << 6 | (byte(3) & 0x3F);
  }
}

// Python's str.isspace(), which str.strip() strips.
bool IsPythonSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
         c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Python's s.strip(). Bytes that are not valid UTF-8 are not whitespace.
std::string_view PythonStrip(std::string_view s) {
  while (!s.empty()) {
    const size_t n = tokenizer_internal::ValidCharLength(s);
    if (n == 0 || !IsPythonSpace(DecodeChar(s.substr(0, n)))) break;
    s.remove_prefix(n);
  }
  while (!s.empty()) {
    // The last character starts at the last byte that is not a
    // continuation byte (at most 3 back).
    size_t start = s.size() - 1;
    while (start > 0 && s.size() - start < 4 &&
           (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
      --start;
    }
    const std::string_view last = s.substr(start);
    if (tokenizer_internal::ValidCharLength(last) != last.size() ||
        !IsPythonSpace(DecodeChar(last))) {
      break;
    }
    s.remove_suffix(last.size());
  }
  return s;
}

std::string Where(size_t i) {
  return std::string(kName) + ": message " + std::to_string(i);
}

}  // namespace

StatusOr<std::string> ApplyLlama2ChatTemplate(
    std::span<const ChatMessage> messages, const ChatTemplateOptions& options) {
  RETURN_IF_ERROR(chat_template_internal::CheckMessages(
      messages, kName, /*allow_reasoning=*/false));
  const bool has_system = messages.front().role == "system";
  const size_t first = has_system ? 1 : 0;
  if (first == messages.size()) {
    return InvalidArgumentError(std::string(kName) +
                                ": a system message alone; a user message "
                                "must follow it");
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const std::string_view expected =
        (i - first) % 2 == 0 ? "user" : "assistant";
    if (messages[i].role != expected) {
      return InvalidArgumentError(
          Where(i) + " is a " + messages[i].role + " message where a " +
          std::string(expected) +
          " message belongs: after an optional first system message, roles "
          "must alternate user, assistant, user, ...");
    }
  }
  if (options.add_generation_prompt && messages.back().role == "assistant") {
    return InvalidArgumentError(
        std::string(kName) +
        ": the conversation ends with an assistant message and Llama 2 has "
        "no way to start another assistant turn; end with a user message, "
        "or render without a generation prompt");
  }

  std::string out;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user") {
      std::string content;
      if (has_system && i == first) {
        content = "<<SYS>>\n" + messages.front().content + "\n<</SYS>>\n\n";
      }
      content += m.content;
      out += kBos;
      out += "[INST] ";
      out += PythonStrip(content);
      out += " [/INST]";
    } else {
      out += " ";
      out += PythonStrip(m.content);
      out += " ";
      out += kEos;
    }
  }
  return out;
}

}  // namespace rlrt
