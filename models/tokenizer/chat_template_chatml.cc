// The ChatML template of Qwen2-Instruct (see chat_template.h).
#include "models/tokenizer/chat_template.h"
#include "models/tokenizer/chat_template_internal.h"

namespace rlrt {
namespace {

constexpr std::string_view kDefaultSystem = "You are a helpful assistant.";

void AppendTurn(std::string_view role, std::string_view content,
                std::string* out) {
  *out += "<|im_start|>";
  *out += role;
  *out += "\n";
  *out += content;
  *out += "<|im_end|>\n";
}

}  // namespace

StatusOr<std::string> ApplyChatMlTemplate(std::span<const ChatMessage> messages,
                                          const ChatTemplateOptions& options) {
  RETURN_IF_ERROR(chat_template_internal::CheckMessages(
      messages, "Qwen2 chat template", /*allow_reasoning=*/false));
  std::string out;
  if (messages.front().role != "system") {
    AppendTurn("system", kDefaultSystem, &out);
  }
  // Every message alike, a later system message included.
  for (const ChatMessage& m : messages) AppendTurn(m.role, m.content, &out);
  if (options.add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace rlrt
