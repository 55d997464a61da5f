// Which chat template a model gets, and the dispatch to it (see
// chat_template.h).
#include <string>

#include "models/tokenizer/chat_template.h"

namespace rlrt {
namespace {

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Markers of the templates the tokenizer files may ship.
bool IsChatMl(std::string_view t) { return Contains(t, "<|im_start|>"); }

// Qwen2-Instruct's ChatML and its default system message, which Qwen2.5's
// longer one contains too.
bool IsQwen2ChatMl(std::string_view t) {
  return IsChatMl(t) && Contains(t, "You are a helpful assistant.") &&
         !Contains(t, "You are Qwen, created by Alibaba Cloud");
}

bool IsLlama2Chat(std::string_view t) {
  return Contains(t, "[INST]") && Contains(t, "<<SYS>>");
}

}  // namespace

std::string_view ChatTemplateKindName(ChatTemplateKind kind) {
  switch (kind) {
    case ChatTemplateKind::kQwen3:
      return "qwen3";
    case ChatTemplateKind::kChatMl:
      return "chatml";
    case ChatTemplateKind::kLlama2:
      return "llama2";
    case ChatTemplateKind::kNone:
      break;
  }
  return "none";
}

ChatTemplateKind ChatTemplateFor(
    std::string_view model_type,
    std::optional<std::string_view> tokenizer_template) {
  if (model_type == "qwen3") {
    return !tokenizer_template || IsChatMl(*tokenizer_template)
               ? ChatTemplateKind::kQwen3
               : ChatTemplateKind::kNone;
  }
  if (model_type == "qwen2") {
    return !tokenizer_template || IsQwen2ChatMl(*tokenizer_template)
               ? ChatTemplateKind::kChatMl
               : ChatTemplateKind::kNone;
  }
  if (model_type == "llama") {
    return tokenizer_template && IsLlama2Chat(*tokenizer_template)
               ? ChatTemplateKind::kLlama2
               : ChatTemplateKind::kNone;
  }
  return ChatTemplateKind::kNone;
}

ChatTemplateKind ChatTemplateFor(std::string_view model_type,
                                 const Tokenizer* tokenizer) {
  return ChatTemplateFor(model_type, tokenizer == nullptr
                                         ? std::nullopt
                                         : tokenizer->chat_template());
}

Status NoChatTemplateError(std::string_view model_type,
                           bool tokenizer_has_template) {
  return InvalidArgumentError(
      "model '" + std::string(model_type) +
      "' has no chat template known to this runtime (" +
      (tokenizer_has_template
           ? "its tokenizer's chat template is not one this runtime renders"
           : "its tokenizer has no chat template") +
      "); send a plain prompt");
}

StatusOr<std::string> ApplyChatTemplate(ChatTemplateKind kind,
                                        std::span<const ChatMessage> messages,
                                        const ChatTemplateOptions& options) {
  switch (kind) {
    case ChatTemplateKind::kQwen3:
      return ApplyQwen3ChatTemplate(messages, options);
    case ChatTemplateKind::kChatMl:
      return ApplyChatMlTemplate(messages, options);
    case ChatTemplateKind::kLlama2:
      return ApplyLlama2ChatTemplate(messages, options);
    case ChatTemplateKind::kNone:
      break;
  }
  return InvalidArgumentError(
      "no chat template known to this runtime for this model; send a plain "
      "prompt");
}

}  // namespace rlrt
