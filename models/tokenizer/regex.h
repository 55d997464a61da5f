// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available)
// for the pre-tokenizer's Split. The compiled code is immutable and shared;
// each FindAll call creates its own match data, so concurrent calls from
// several threads are safe.
#ifndef RLRT_MODELS_TOKENIZER_REGEX_H_
#define RLRT_MODELS_TOKENIZER_REGEX_H_

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace rlrt::tokenizer_internal {

// A byte range [begin, end) of some text.
struct Span {
  size_t begin = 0;
  size_t end = 0;
  friend bool operator==(const Span&, const Span&) = default;
};

class Regex {
 public:
  // InvalidArgument (with PCRE2's message and offset) if `pattern` does not
  // compile.
  static StatusOr<std::unique_ptr<Regex>> Compile(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends to `out` the non-empty, non-overlapping matches in `text`, left
  // to right, as byte ranges offset by `base`. `text` must be valid UTF-8
  // (callers split off invalid bytes first). Should PCRE2 give up on a
  // pathological input (match or JIT stack limit), the rest of the text is
  // returned as one range, so every byte is still accounted for.
  void FindAll(std::string_view text, size_t base,
               std::vector<Span>* out) const;

 private:
  explicit Regex(void* code) : code_(code) {}
  void* code_;  // pcre2_code_8*, kept opaque to keep pcre2.h out of headers.
};

// Splits `text` (any bytes) into the pieces of a Split pre-tokenizer with
// behaviour "Isolated": every match is a piece and so is every stretch
// between matches. Each byte that is not valid UTF-8 is a piece of its own,
// and the regex sees the valid runs between such bytes as separate texts.
void SplitIsolated(const Regex& regex, std::string_view text,
                   std::vector<Span>* out);

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_REGEX_H_
