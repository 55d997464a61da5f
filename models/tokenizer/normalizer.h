// The normalizer stage of a Hugging Face tokenizer.json: applied to each
// stretch of text between added tokens, before the pre-tokenizer.
//
// Supported types: NFC, NFD, NFKC, NFKD (via utf8proc), Prepend, Replace
// with a String pattern, and Sequence of these. Anything else is refused at
// load time, so a tokenizer never runs with a stage silently skipped.
#ifndef RLRT_MODELS_TOKENIZER_NORMALIZER_H_
#define RLRT_MODELS_TOKENIZER_NORMALIZER_H_

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/tokenizer/json_util.h"

namespace rlrt::tokenizer_internal {

class Normalizer {
 public:
  // The identity.
  Normalizer() = default;

  // From the "normalizer" member of tokenizer.json (null: the identity).
  static StatusOr<Normalizer> FromJson(const Json& json);

  bool is_identity() const { return steps_.empty(); }

  // Writes the normalized form of `text` to `out` (replacing its contents).
  // Any bytes are accepted: the Unicode forms are applied to each valid
  // UTF-8 run and invalid bytes are kept as they are.
  void Normalize(std::string_view text, std::string* out) const;

 private:
  enum class Kind { kNfc, kNfd, kNfkc, kNfkd, kPrepend, kReplace };
  struct Step {
    Kind kind;
    std::string from;  // kReplace: the literal pattern; kPrepend: unused.
    std::string to;    // kReplace: the replacement; kPrepend: the prefix.
  };
  static Status Append(const Json& json, int depth, std::vector<Step>* steps);

  std::vector<Step> steps_;
};

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_NORMALIZER_H_
