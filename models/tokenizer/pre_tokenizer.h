// The pre-tokenizer stage of a Hugging Face tokenizer.json: splits normalized
// text into pieces that the BPE model encodes independently.
//
// Supported: Split with a Regex pattern and behaviour "Isolated" (not
// inverted), ByteLevel (add_prefix_space false; use_regex adds the GPT-2
// split), and Sequence of these with ByteLevel last. ByteLevel's own work,
// mapping bytes to printable characters, happens in the BPE model, which is
// told through byte_level(). Anything else is refused at load time.
#ifndef RLRT_MODELS_TOKENIZER_PRE_TOKENIZER_H_
#define RLRT_MODELS_TOKENIZER_PRE_TOKENIZER_H_

#include <memory>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/tokenizer/json_util.h"
#include "models/tokenizer/regex.h"

namespace rlrt::tokenizer_internal {

class PreTokenizer {
 public:
  // No splitting: the whole text is one piece.
  PreTokenizer() = default;

  // From the "pre_tokenizer" member of tokenizer.json (null: no splitting).
  static StatusOr<PreTokenizer> FromJson(const Json& json);

  // A byte-level pre-tokenizer that splits nothing (for the byte tokenizer).
  static PreTokenizer ByteLevelOnly();

  // Whether the model must see the pieces as bytes (ByteLevel).
  bool byte_level() const { return byte_level_; }

  // Replaces `out` with the pieces of `text`, which cover it exactly, in
  // order; empty text gives no pieces. Any bytes are accepted (see
  // SplitIsolated for invalid UTF-8).
  void Split(std::string_view text, std::vector<Span>* out) const;

 private:
  Status Append(const Json& json, int depth);

  // Applied in order; each one splits the pieces of the previous one.
  std::vector<std::shared_ptr<const Regex>> splits_;
  bool byte_level_ = false;
};

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_PRE_TOKENIZER_H_
