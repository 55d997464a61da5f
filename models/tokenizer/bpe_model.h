// The BPE model of a Hugging Face tokenizer.json: turns one pre-tokenized
// piece into ids by applying ranked merges, lowest rank first and, among
// equal ranks, leftmost first.
//
// Two ways of starting from characters are supported:
// - byte level (Qwen, GPT-2): each byte of the piece is the vocabulary entry
//   of its byte-level character;
// - characters (SentencePiece-style, Llama 2): each UTF-8 character is its
//   own vocabulary entry if it has one, otherwise its bytes become <0xNN>
//   entries (byte_fallback) or the unknown token.
// Either way every input can be represented; a configuration that could not
// is refused by Create.
#ifndef RLRT_MODELS_TOKENIZER_BPE_MODEL_H_
#define RLRT_MODELS_TOKENIZER_BPE_MODEL_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"
#include "models/tokenizer/json_util.h"

namespace rlrt::tokenizer_internal {

// Hashes std::string and std::string_view alike, so maps keyed by string
// can be searched with a string_view without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const {
    return std::hash<std::string_view>()(s);
  }
};
using TokenMap =
    std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeConfig {
  bool byte_level = false;
  bool byte_fallback = false;
  std::string unk_token;  // Empty: none.
  bool fuse_unk = false;
  // Look the whole piece up before merging (Llama 3 style).
  bool ignore_merges = false;
};

class BpeModel {
 public:
  // Validates everything: ids unique and non-negative, every merge made of
  // vocabulary entries whose concatenation is one too, and complete
  // coverage of the input (see the file comment).
  static StatusOr<BpeModel> Create(
      TokenMap vocab,
      const std::vector<std::pair<std::string, std::string>>& merges,
      BpeConfig config);

  // From the "model" member of tokenizer.json. `byte_level` comes from the
  // pre-tokenizer.
  static StatusOr<BpeModel> FromJson(const Json& model, bool byte_level);

  // Appends the ids of `piece` (any bytes) to `out`.
  void Encode(std::string_view piece, std::vector<int32_t>* out) const;

  const TokenMap& vocab() const { return vocab_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  const Merge* FindMerge(int32_t left, int32_t right) const;
  // The starting symbols of `piece`, before any merge.
  void InitialIds(std::string_view piece, std::vector<int32_t>* ids) const;

  TokenMap vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  BpeConfig config_;
  // byte_level: the id of each byte's character; byte_fallback: of <0xNN>.
  std::array<int32_t, 256> byte_ids_{};
  int32_t unk_id_ = -1;
};

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_BPE_MODEL_H_
