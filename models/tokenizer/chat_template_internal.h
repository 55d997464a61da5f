// Checks shared by the chat templates (chat_template*.cc). Internal.
#ifndef RLRT_MODELS_TOKENIZER_CHAT_TEMPLATE_INTERNAL_H_
#define RLRT_MODELS_TOKENIZER_CHAT_TEMPLATE_INTERNAL_H_

#include <span>
#include <string_view>

#include "base/status.h"
#include "models/tokenizer/chat_template.h"

namespace rlrt::chat_template_internal {

// InvalidArgument for no messages, a role other than system, user and
// assistant, or reasoning_content on a message that is not an assistant's
// (on any message when !allow_reasoning); Unimplemented for a tool message.
// `name` starts each error, e.g. "chat template".
Status CheckMessages(std::span<const ChatMessage> messages,
                     std::string_view name, bool allow_reasoning);

}  // namespace rlrt::chat_template_internal

#endif  // RLRT_MODELS_TOKENIZER_CHAT_TEMPLATE_INTERNAL_H_
