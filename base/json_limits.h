// Bounds on untrusted JSON, checked on the raw text before any parser or
// allocation sees it. A parsed document is later walked, copied, dumped and
// destroyed recursively (by nlohmann::json and by our own readers), so a
// body of 60,000 nested arrays would overflow the stack long after parsing
// succeeded. Every place that parses JSON from outside (HTTP bodies,
// config.json, safetensors headers, shard indexes, tokenizer files, chat
// messages, data files) checks nesting first with this one helper.
#ifndef RLRT_BASE_JSON_LIMITS_H_
#define RLRT_BASE_JSON_LIMITS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"

namespace rlrt {

// Far deeper than any document we read (tokenizer.json nests about 6
// levels, a chat request about 5), far shallower than what endangers a
// thread's stack.
inline constexpr int kMaxJsonDepth = 128;

// OK when no array or object in `text` is nested deeper than `max_depth`
// levels (brackets inside strings do not count). Otherwise InvalidArgument
// naming `what` and the limit. Runs in one pass, allocates nothing, and does
// not validate anything else: malformed text is left for the parser.
Status CheckJsonDepth(std::string_view text, std::string_view what,
                      int max_depth = kMaxJsonDepth);

// The message for a document that fails to parse: where, never what. A
// parser's own message quotes the text it choked on, and the text may be a
// file an admin request pointed at.
inline std::string JsonSyntaxError(std::string_view what, size_t byte) {
  return std::string(what) + " is not valid JSON (syntax error near byte " +
         std::to_string(byte) + ")";
}

}  // namespace rlrt

#endif  // RLRT_BASE_JSON_LIMITS_H_
