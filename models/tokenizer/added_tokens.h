// Added tokens (special or not, e.g. "<|im_end|>", "<think>"): strings that
// are matched in the raw text before normalization and encoded as single
// ids, whatever the BPE model would make of them.
#ifndef RLRT_MODELS_TOKENIZER_ADDED_TOKENS_H_
#define RLRT_MODELS_TOKENIZER_ADDED_TOKENS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rlrt::tokenizer_internal {

struct AddedToken {
  int32_t id = -1;
  std::string content;  // Non-empty.
  bool special = false;
};

// A stretch of text: either plain text (id < 0) or one added token.
struct Segment {
  std::string_view text;
  int32_t id = -1;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // Tokens with empty content are ignored (the loader refuses them).
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  // Replaces `out` with the segments of `text` (any bytes), in order. At
  // each position the longest token that matches there wins, scanning left
  // to right (leftmost-longest, as in Hugging Face tokenizers).
  void Split(std::string_view text, std::vector<Segment>* out) const;

 private:
  struct Entry {
    std::string content;
    int32_t id;
  };
  // Entries grouped by first byte, longest first; a position whose byte
  // starts no token costs one table lookup.
  std::array<std::vector<Entry>, 256> by_first_byte_;
};

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_ADDED_TOKENS_H_
