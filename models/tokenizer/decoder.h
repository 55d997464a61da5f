// The decoder stage of a Hugging Face tokenizer.json, compiled into what
// Decode needs: the bytes each token stands for, plus how many leading
// spaces to strip from the start of the whole text (SentencePiece's
// "drop the space in front of the first word").
//
// Supported types: ByteLevel, Replace (String pattern), ByteFallback, Fuse,
// Strip, and Sequence of these. Steps before the first Fuse act on each
// token; after it only Strip of leading characters is supported, which acts
// on the start of the text. Anything else is refused at load time.
//
// Unlike Hugging Face, byte tokens that do not form valid UTF-8 are kept as
// raw bytes rather than turned into U+FFFD, so decoding is exact.
#ifndef RLRT_MODELS_TOKENIZER_DECODER_H_
#define RLRT_MODELS_TOKENIZER_DECODER_H_

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/tokenizer/json_util.h"

namespace rlrt::tokenizer_internal {

class Decoder {
 public:
  // From the "decoder" member of tokenizer.json. A missing decoder is an
  // error: without one Hugging Face joins tokens with spaces, which no
  // supported model wants.
  static StatusOr<Decoder> FromJson(const Json& json);

  // Just ByteLevel (for the byte tokenizer).
  static Decoder ByteLevel();

  // The bytes that one token's string decodes to.
  std::string DecodeToken(std::string_view token) const;

  // The character (UTF-8) stripped from the start of the decoded text, and
  // at most how many times; 0 when nothing is stripped.
  const std::string& strip_char() const { return strip_char_; }
  int strip_count() const { return strip_count_; }

 private:
  enum class Kind { kByteLevel, kReplace, kByteFallback, kStrip };
  struct Step {
    Kind kind;
    std::string from;  // kReplace: pattern; kStrip: the character.
    std::string to;    // kReplace: replacement.
    int start = 0;     // kStrip
    int stop = 0;      // kStrip
  };
  Status Append(const Json& json, int depth);

  std::vector<Step> per_token_;
  bool fused_ = false;
  std::string strip_char_;
  int strip_count_ = 0;
};

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_DECODER_H_
