// Strict UTF-8 helpers. The tokenizer accepts arbitrary bytes, so every stage
// that needs Unicode (NFC, the pre-tokenizer regex) works on the maximal
// valid runs of its input and passes invalid bytes through one at a time.
// "Valid" follows RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF.
#ifndef RLRT_MODELS_TOKENIZER_UTF8_H_
#define RLRT_MODELS_TOKENIZER_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace rlrt::tokenizer_internal {

// Length (1-4) of the valid character that starts `s`, or 0 when `s` is empty
// or does not start with a complete, valid character.
size_t ValidCharLength(std::string_view s);

// Length (0-3) of the longest suffix of `s` that is a proper prefix of some
// valid character, i.e. bytes that more input could still complete.
size_t IncompleteTailLength(std::string_view s);

bool IsAscii(std::string_view s);
bool IsValidUtf8(std::string_view s);

// Calls fn(run, valid) for each maximal run of valid UTF-8 (valid = true) and
// for each byte that starts no valid character (valid = false, one byte
// each), in order; the runs concatenate to `s`.
template <typename Fn>
void ForEachUtf8Run(std::string_view s, Fn&& fn) {
  size_t run_start = 0;
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = static_cast<unsigned char>(s[i]) < 0x80
                         ? 1
                         : ValidCharLength(s.substr(i));
    if (n > 0) {
      i += n;
      continue;
    }
    if (i > run_start) fn(s.substr(run_start, i - run_start), true);
    fn(s.substr(i, 1), false);
    run_start = ++i;
  }
  if (i > run_start) fn(s.substr(run_start, i - run_start), true);
}

// Appends the UTF-8 encoding of `cp` (which must be a valid scalar value).
void AppendUtf8(char32_t cp, std::string* out);

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_UTF8_H_
