// The stages a Tokenizer is made of. Internal: built by the loaders
// (hf_loader.cc, byte_tokenizer.cc) and read by tokenizer.cc and
// stream_decoder.cc.
#ifndef RLRT_MODELS_TOKENIZER_TOKENIZER_PARTS_H_
#define RLRT_MODELS_TOKENIZER_TOKENIZER_PARTS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "models/tokenizer/added_tokens.h"
#include "models/tokenizer/bpe_model.h"
#include "models/tokenizer/normalizer.h"
#include "models/tokenizer/post_processor.h"
#include "models/tokenizer/pre_tokenizer.h"
#include "models/tokenizer/token_table.h"

namespace rlrt::tokenizer_internal {

struct TokenizerParts {
  AddedTokenMatcher added;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  PostProcessor post;
  TokenTable table;
  // Decoder's start-of-text strip (see decoder.h).
  std::string strip_char;
  int strip_count = 0;
  std::optional<int32_t> bos;
  std::optional<int32_t> eos;
  std::optional<int32_t> pad;
  // The Jinja chat template the files ship, if any (see
  // Tokenizer::chat_template).
  std::optional<std::string> chat_template;
};

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_TOKENIZER_PARTS_H_
