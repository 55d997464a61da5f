// The Qwen3 chat template, written natively (no Jinja): produces exactly the
// text that the template in Qwen3's tokenizer_config.json renders for
// conversations of system, user and assistant messages without tools.
//
// What the template does, and so what this does:
// - A system message is rendered only as the first message; a later one is
//   rendered like a user message.
// - Each user/system message is "<|im_start|>{role}\n{content}<|im_end|>\n".
// - An assistant message's reasoning comes from reasoning_content if given,
//   else from a "<think>...</think>" block in its content (the content then
//   keeps only what follows the last "</think>"). Reasoning is shown, as
//   "<think>\n{reasoning}\n</think>\n\n", only for assistant messages after
//   the last user message, and for those only if it is non-empty or the
//   message is the last one; earlier turns keep just their answer.
// - The generation prompt is "<|im_start|>assistant\n", followed by an empty
//   "<think>\n\n</think>\n\n" when thinking is disabled.
// Tool calls and tool messages are not supported and are refused.
#ifndef RLRT_MODELS_TOKENIZER_CHAT_TEMPLATE_H_
#define RLRT_MODELS_TOKENIZER_CHAT_TEMPLATE_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace rlrt {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant".
  std::string content;
  // Assistant only: the reasoning, kept apart from the content (as the
  // template's reasoning_content). When set, content is used as is.
  std::optional<std::string> reasoning_content;
};

struct ChatTemplateOptions {
  // End with the assistant's turn header, ready for generation.
  bool add_generation_prompt = true;
  // false renders an empty think block after the generation prompt, which
  // makes Qwen3 answer without reasoning.
  bool enable_thinking = true;
};

// InvalidArgument for no messages or an unknown role; Unimplemented for
// "tool" messages.
StatusOr<std::string> ApplyQwen3ChatTemplate(
    std::span<const ChatMessage> messages,
    const ChatTemplateOptions& options = {});

// Parses a JSON list of {"role": ..., "content": ...} objects, each
// optionally with "reasoning_content". Other keys (such as "tool_calls")
// are refused rather than ignored.
StatusOr<std::vector<ChatMessage>> ParseChatMessages(std::string_view json);

}  // namespace rlrt

#endif  // RLRT_MODELS_TOKENIZER_CHAT_TEMPLATE_H_
