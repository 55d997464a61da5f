// Everything known about each id: its string, whether it is special, and
// the bytes it decodes to (precomputed once, so Decode is a concatenation).
#ifndef RLRT_MODELS_TOKENIZER_TOKEN_TABLE_H_
#define RLRT_MODELS_TOKENIZER_TOKEN_TABLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/tokenizer/added_tokens.h"
#include "models/tokenizer/bpe_model.h"
#include "models/tokenizer/decoder.h"

namespace rlrt::tokenizer_internal {

class TokenTable {
 public:
  // Ids above this are refused: real vocabularies are far smaller, and the
  // table is dense.
  static constexpr int64_t kMaxSize = int64_t{1} << 24;

  TokenTable() = default;

  // Merges the model vocabulary with the added tokens. An added token may
  // repeat a vocabulary entry (same string, same id, as Llama's "<s>") but
  // not contradict one; ids need not be contiguous.
  static StatusOr<TokenTable> Build(const TokenMap& vocab,
                                    const std::vector<AddedToken>& added,
                                    const Decoder& decoder);

  int64_t size() const { return static_cast<int64_t>(flags_.size()); }
  bool Known(int32_t id) const {
    return id >= 0 && id < size() && (flags_[id] & kKnown);
  }
  bool Special(int32_t id) const {
    return Known(id) && (flags_[id] & kSpecial);
  }
  // Only for known ids.
  std::string_view Token(int32_t id) const { return tokens_[id]; }
  std::string_view Bytes(int32_t id) const {
    return std::string_view(bytes_).substr(offsets_[id],
                                           offsets_[id + 1] - offsets_[id]);
  }
  std::optional<int32_t> Find(std::string_view token) const;

 private:
  static constexpr uint8_t kKnown = 1;
  static constexpr uint8_t kSpecial = 2;

  std::vector<std::string> tokens_;
  std::vector<uint8_t> flags_;
  std::string bytes_;
  std::vector<uint32_t> offsets_;  // size() + 1 entries.
  TokenMap ids_;
};

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_TOKEN_TABLE_H_
