// The Qwen3 template, the checks all templates share, and ParseChatMessages.
#include "models/tokenizer/chat_template.h"

#include "models/tokenizer/chat_template_internal.h"
#include "models/tokenizer/json_util.h"

namespace rlrt {
namespace {

using tokenizer_internal::Json;

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";

// Python's str.lstrip('\n'), rstrip('\n') and strip('\n'), which the
// template uses.
std::string_view LStripNewlines(std::string_view s) {
  const size_t i = s.find_first_not_of('\n');
  return i == std::string_view::npos ? std::string_view() : s.substr(i);
}
std::string_view RStripNewlines(std::string_view s) {
  const size_t i = s.find_last_not_of('\n');
  return i == std::string_view::npos ? std::string_view() : s.substr(0, i + 1);
}
std::string_view StripNewlines(std::string_view s) {
  return RStripNewlines(LStripNewlines(s));
}

// Python's s.split(sep)[-1]: what follows the last `sep` (all of s if none).
std::string_view AfterLast(std::string_view s, std::string_view sep) {
  const size_t i = s.rfind(sep);
  return i == std::string_view::npos ? s : s.substr(i + sep.size());
}
// s.split(sep)[0]: what precedes the first `sep`.
std::string_view BeforeFirst(std::string_view s, std::string_view sep) {
  return s.substr(0, s.find(sep));
}

bool IsToolResponse(std::string_view content) {
  return content.starts_with("<tool_response>") &&
         content.ends_with("</tool_response>");
}

void AppendTurn(std::string_view role, std::string_view body,
                std::string* out) {
  *out += "<|im_start|>";
  *out += role;
  *out += "\n";
  *out += body;
  *out += "<|im_end|>\n";
}

void AppendAssistant(const ChatMessage& m, bool show_reasoning_slot,
                     bool is_last, std::string* out) {
  std::string_view content = m.content;
  std::string_view reasoning;
  if (m.reasoning_content) {
    reasoning = *m.reasoning_content;
  } else if (content.find(kThinkClose) != std::string_view::npos) {
    reasoning = LStripNewlines(AfterLast(
        RStripNewlines(BeforeFirst(content, kThinkClose)), kThinkOpen));
    content = LStripNewlines(AfterLast(content, kThinkClose));
  }
  *out += "<|im_start|>assistant\n";
  if (show_reasoning_slot && (is_last || !reasoning.empty())) {
    *out += "<think>\n";
    *out += StripNewlines(reasoning);
    *out += "\n</think>\n\n";
    *out += LStripNewlines(content);
  } else {
    *out += content;
  }
  *out += "<|im_end|>\n";
}

}  // namespace

namespace chat_template_internal {

Status CheckMessages(std::span<const ChatMessage> messages,
                     std::string_view name, bool allow_reasoning) {
  const std::string prefix(name);
  if (messages.empty()) return InvalidArgumentError(prefix + ": no messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    const std::string where = prefix + ": message " + std::to_string(i);
    if (role == "tool") {
      return UnimplementedError(where +
                                " is a tool message; tools are not supported");
    }
    if (role != "system" && role != "user" && role != "assistant") {
      return InvalidArgumentError(where + " has role \"" + role +
                                  "\" (expected system, user or assistant)");
    }
    if (!messages[i].reasoning_content) continue;
    if (role != "assistant") {
      return InvalidArgumentError(
          where + " has reasoning_content but is not an assistant message");
    }
    if (!allow_reasoning) {
      return InvalidArgumentError(
          where +
          " has reasoning_content, which this model's template cannot "
          "render (only Qwen3's can)");
    }
  }
  return OkStatus();
}

}  // namespace chat_template_internal

StatusOr<std::string> ApplyQwen3ChatTemplate(
    std::span<const ChatMessage> messages, const ChatTemplateOptions& options) {
  RETURN_IF_ERROR(chat_template_internal::CheckMessages(
      messages, "chat template", /*allow_reasoning=*/true));
  // The last user message that is not a wrapped tool response; reasoning
  // is rendered only after it.
  size_t last_query = messages.size() - 1;
  for (size_t i = messages.size(); i-- > 0;) {
    if (messages[i].role == "user" && !IsToolResponse(messages[i].content)) {
      last_query = i;
      break;
    }
  }

  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "assistant") {
      AppendAssistant(m, /*show_reasoning_slot=*/i > last_query,
                      /*is_last=*/i + 1 == messages.size(), &out);
    } else {
      // A leading system message and user messages render alike.
      AppendTurn(m.role, m.content, &out);
    }
  }
  if (options.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (!options.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

StatusOr<std::vector<ChatMessage>> ParseChatMessages(std::string_view json) {
  ASSIGN_OR_RETURN(const Json root,
                   tokenizer_internal::ParseJson(json, "chat messages"));
  if (!root.is_array()) {
    return InvalidArgumentError(
        "chat messages must be a JSON list of {\"role\", \"content\"}");
  }
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < root.size(); ++i) {
    const Json& item = root[i];
    const std::string where = "chat message " + std::to_string(i);
    if (!item.is_object()) {
      return InvalidArgumentError(where + " must be an object");
    }
    for (const auto& [key, value] : item.items()) {
      if (key != "role" && key != "content" && key != "reasoning_content") {
        return InvalidArgumentError(where + ": unsupported key \"" + key +
                                    "\"");
      }
    }
    ChatMessage m;
    ASSIGN_OR_RETURN(m.role,
                     tokenizer_internal::GetString(item, "role", where));
    ASSIGN_OR_RETURN(m.content,
                     tokenizer_internal::GetString(item, "content", where));
    if (!tokenizer_internal::IsAbsent(item, "reasoning_content")) {
      ASSIGN_OR_RETURN(
          m.reasoning_content,
          tokenizer_internal::GetString(item, "reasoning_content", where));
    }
    messages.push_back(std::move(m));
  }
  return messages;
}

}  // namespace rlrt
