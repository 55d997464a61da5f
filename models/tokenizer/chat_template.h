// Chat templates, written natively (no Jinja): each produces exactly the text
// that the named Hugging Face template renders for conversations of system,
// user and assistant messages without tools. A model gets the template it
// was trained with, or none: a chat request for a model whose template this
// runtime does not know is refused rather than formatted wrongly.
//
// Choosing the template (ChatTemplateFor). The model's config.json
// model_type decides the family and the template the tokenizer files ship
// (Tokenizer::chat_template, only inspected, never executed) confirms it:
// - "qwen3": the Qwen3 template (below), unless the tokenizer ships a
//   template that is not ChatML (has no "<|im_start|>").
// - "qwen2": Qwen2-Instruct's ChatML, unless the tokenizer ships another
//   template. model_type "qwen2" also covers models with other templates:
//   Qwen2.5 (a different default system message), Qwen2.5-Math, and the
//   DeepSeek-R1 distillations of Qwen. So a shipped template must look like
//   Qwen2's: ChatML with the default system message "You are a helpful
//   assistant." and not Qwen2.5's "You are Qwen, created by Alibaba Cloud.".
// - "llama": Llama 2 chat only when the tokenizer ships a template with
//   "[INST]" and "<<SYS>>" (meta-llama/Llama-2-*-chat-hf). A base Llama
//   without one (such as stories260K), and Llama 3 or other fine-tunes, get
//   none.
// - Anything else: none.
// Without tokenizer files (nullopt), Qwen models get their family's
// template and Llama none.
//
// kQwen3, as Qwen3's tokenizer_config.json renders it:
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
//
// kChatMl, as Qwen2-Instruct's tokenizer_config.json renders it:
// - When the first message is not a system message, a system message
//   "You are a helpful assistant." is put in front.
// - Every message is "<|im_start|>{role}\n{content}<|im_end|>\n", content
//   as is (a "<think>" in it is plain text).
// - The generation prompt is "<|im_start|>assistant\n".
// Qwen2 has no thinking mode: enable_thinking is ignored, and
// reasoning_content is refused (the template would drop it silently).
//
// kLlama2, as meta-llama/Llama-2-*-chat-hf's tokenizer_config.json renders
// it (bos "<s>", eos "</s>"; strip() is Python's, all Unicode whitespace):
// - An optional first system message; after it the roles must alternate
//   user, assistant, user, ... (refused with InvalidArgument otherwise; the
//   template raises for most wrong orders and silently drops a system
//   message in an assistant's place, which is refused too).
// - A user message is "<s>[INST] " + content.strip() + " [/INST]"; the
//   first one's content is "<<SYS>>\n{system}\n<</SYS>>\n\n{user}" (before
//   the strip) when there is a system message.
// - An assistant message is " " + content.strip() + " </s>".
// - There is no generation prompt: the text ends with " [/INST]" after a
//   user message, which is where the answer goes. So add_generation_prompt
//   changes nothing, except that asking for one after a final assistant
//   message is refused (Llama 2 has no way to start a second assistant
//   turn). enable_thinking is ignored; reasoning_content is refused.
// BOS: the rendered text holds each turn's "<s>" itself, as the template
// does. Encode it with add_special_tokens = false (the default, and what
// the engine does), so that "<s>" becomes the BOS id and the
// post-processor adds no second BOS in front; parse_special must stay on.
//
// Tool calls and tool messages are not supported by any template and are
// refused (Unimplemented).
#ifndef RLRT_MODELS_TOKENIZER_CHAT_TEMPLATE_H_
#define RLRT_MODELS_TOKENIZER_CHAT_TEMPLATE_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/tokenizer/tokenizer.h"

namespace rlrt {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant".
  std::string content;
  // Assistant only: the reasoning, kept apart from the content (as the
  // template's reasoning_content). When set, content is used as is.
  // Only the Qwen3 template renders it.
  std::optional<std::string> reasoning_content;
};

struct ChatTemplateOptions {
  // End with the assistant's turn header, ready for generation.
  bool add_generation_prompt = true;
  // Qwen3 only: false renders an empty think block after the generation
  // prompt, which makes Qwen3 answer without reasoning.
  bool enable_thinking = true;
};

enum class ChatTemplateKind {
  kQwen3,   // Qwen3, with thinking on or off.
  kChatMl,  // Qwen2-Instruct.
  kLlama2,  // Llama 2 chat, "[INST]".
  kNone,    // No template known: chat requests are refused.
};

// "qwen3", "chatml", "llama2", "none".
std::string_view ChatTemplateKindName(ChatTemplateKind kind);

// The template for a model of `model_type` (config.json's: "qwen3",
// "qwen2", "llama") whose tokenizer ships `tokenizer_template` (nullopt:
// none); see the top of this file. kNone when there is no known template.
ChatTemplateKind ChatTemplateFor(
    std::string_view model_type,
    std::optional<std::string_view> tokenizer_template);
// The same with the tokenizer's own template; a null tokenizer ships none.
ChatTemplateKind ChatTemplateFor(std::string_view model_type,
                                 const Tokenizer* tokenizer);

// The refusal for a chat request to a model with kind kNone:
// InvalidArgument "model '<model_type>' has no chat template known to this
// runtime (...); send a plain prompt", saying whether the tokenizer ships
// a template (one this runtime does not implement) or none at all.
Status NoChatTemplateError(std::string_view model_type,
                           bool tokenizer_has_template);

// Renders `messages` with the template of `kind`. InvalidArgument for no
// messages, an unknown role, a role order or option the template cannot
// render, and for kNone; Unimplemented for "tool" messages.
StatusOr<std::string> ApplyChatTemplate(ChatTemplateKind kind,
                                        std::span<const ChatMessage> messages,
                                        const ChatTemplateOptions& options);

// The templates themselves, with the same errors.
StatusOr<std::string> ApplyQwen3ChatTemplate(
    std::span<const ChatMessage> messages,
    const ChatTemplateOptions& options = {});
StatusOr<std::string> ApplyChatMlTemplate(
    std::span<const ChatMessage> messages,
    const ChatTemplateOptions& options = {});
StatusOr<std::string> ApplyLlama2ChatTemplate(
    std::span<const ChatMessage> messages,
    const ChatTemplateOptions& options = {});

// Parses a JSON list of {"role": ..., "content": ...} objects, each
// optionally with "reasoning_content". Other keys (such as "tool_calls")
// are refused rather than ignored.
StatusOr<std::vector<ChatMessage>> ParseChatMessages(std::string_view json);

}  // namespace rlrt

#endif  // RLRT_MODELS_TOKENIZER_CHAT_TEMPLATE_H_
