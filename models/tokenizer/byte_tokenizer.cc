// MakeByteTokenizer: a tokenizer for model presets that come without
// tokenizer files. It is the general pipeline with a byte-level vocabulary
// and no merges, so every byte is its own token.
#include <string>
#include <utility>
#include <vector>

#include "models/tokenizer/byte_level.h"
#include "models/tokenizer/tokenizer.h"
#include "models/tokenizer/tokenizer_parts.h"

namespace rlrt {
namespace {

using tokenizer_internal::AddedToken;
using tokenizer_internal::AddedTokenMatcher;
using tokenizer_internal::BpeConfig;
using tokenizer_internal::BpeModel;
using tokenizer_internal::ByteLevelChar;
using tokenizer_internal::Decoder;
using tokenizer_internal::PreTokenizer;
using tokenizer_internal::TokenizerParts;
using tokenizer_internal::TokenMap;
using tokenizer_internal::TokenTable;

constexpr int32_t kBos = 256;
constexpr int32_t kEos = 257;
constexpr int32_t kPad = 258;
constexpr int64_t kMinVocab = 259;

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> MakeByteTokenizer(int64_t vocab_size) {
  if (vocab_size < kMinVocab || vocab_size > TokenTable::kMaxSize) {
    return InvalidArgumentError("MakeByteTokenizer: vocab_size " +
                                std::to_string(vocab_size) + " must be in [" +
                                std::to_string(kMinVocab) + ", " +
                                std::to_string(TokenTable::kMaxSize) +
                                "] (256 bytes + <|bos|>, <|eos|>, <|pad|>)");
  }
  TokenMap vocab;
  for (int b = 0; b < 256; ++b) {
    vocab.emplace(std::string(ByteLevelChar(static_cast<uint8_t>(b))), b);
  }
  BpeConfig config;
  config.byte_level = true;
  ASSIGN_OR_RETURN(BpeModel model, BpeModel::Create(vocab, {}, config));

  const std::vector<AddedToken> matched = {{kBos, "<|bos|>", true},
                                           {kEos, "<|eos|>", true},
                                           {kPad, "<|pad|>", true}};
  std::vector<AddedToken> all = matched;
  for (int64_t id = kMinVocab; id < vocab_size; ++id) {
    all.push_back({static_cast<int32_t>(id),
                   "<|reserved_" + std::to_string(id) + "|>", true});
  }
  auto parts = std::make_unique<TokenizerParts>();
  ASSIGN_OR_RETURN(parts->table,
                   TokenTable::Build(vocab, all, Decoder::ByteLevel()));
  parts->model = std::move(model);
  parts->pre_tokenizer = PreTokenizer::ByteLevelOnly();
  // Reserved tokens are not matched in text: Encode never produces them,
  // and matching thousands of them at every '<' would be slow.
  parts->added = AddedTokenMatcher(matched);
  parts->post.prefix = {kBos};
  parts->bos = kBos;
  parts->eos = kEos;
  parts->pad = kPad;
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(parts)));
}

}  // namespace rlrt
