// Incremental decoding for generation: feed ids one at a time and get the
// text they complete. A character whose bytes are spread over several
// tokens (byte-level BPE splits emoji and rare CJK this way) is held back
// until its last byte arrives, so callers never print half a character.
//
// The concatenation of everything Next and Flush return equals
// Tokenizer::Decode of the same ids. Bytes that can never become valid
// UTF-8 are passed through unchanged rather than held forever, so a model
// emitting invalid byte sequences still makes progress.
//
// Not thread-safe (it has state); use one per sequence. The tokenizer must
// outlive it.
#ifndef RLRT_MODELS_TOKENIZER_STREAM_DECODER_H_
#define RLRT_MODELS_TOKENIZER_STREAM_DECODER_H_

#include <cstdint>
#include <string>

#include "base/status.h"
#include "models/tokenizer/tokenizer.h"

namespace rlrt {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer,
                         bool skip_special_tokens = false);

  // The text that `id` completes (often empty while a character is
  // pending). An unknown id is an error and leaves the state unchanged.
  StatusOr<std::string> Next(int32_t id);

  // Returns the held-back bytes of an unfinished character, if any, and
  // starts over as if no id had been seen.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;
  // Start-of-text strips still to apply (SentencePiece's leading space);
  // zero once the text's start is known not to be a strip character.
  int strip_left_;
};

}  // namespace rlrt

#endif  // RLRT_MODELS_TOKENIZER_STREAM_DECODER_H_
