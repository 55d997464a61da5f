// Text <-> token ids for the decoders this runtime trains: byte-level BPE
// (Qwen2/Qwen3) and SentencePiece-style BPE with byte fallback (Llama 2),
// both loaded from Hugging Face tokenizer.json files, plus a byte tokenizer
// for model presets that come without tokenizer files.
//
// Encoding follows Hugging Face tokenizers: added tokens are matched in the
// raw text first, then each stretch between them is normalized,
// pre-tokenized and BPE-encoded, and finally the post-processor may add
// special tokens. Input need not be valid UTF-8: each byte that starts no
// valid character is a piece of its own and is encoded through the byte
// tokens (byte-level vocabulary or <0xNN> byte fallback), so Decode gives
// the same bytes back.
//
// A Tokenizer is immutable once built; all methods are const and safe to
// call from several threads at once.
#ifndef RLRT_MODELS_TOKENIZER_TOKENIZER_H_
#define RLRT_MODELS_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace rlrt {

namespace tokenizer_internal {
struct TokenizerParts;
}  // namespace tokenizer_internal

struct EncodeOptions {
  // Let the post-processor add its special tokens (Llama 2: BOS in front).
  // Off by default because chat templates write their own.
  bool add_special_tokens = false;
  // Match added tokens written in the text ("<|im_end|>", "<think>") as
  // single ids. Off: the whole text is plain text, so untrusted content
  // cannot inject control tokens.
  bool parse_special = true;
};

class Tokenizer {
 public:
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Never fails: any bytes have an encoding.
  std::vector<int32_t> Encode(std::string_view text,
                              const EncodeOptions& options = {}) const;

  // The text of `ids`. Ids outside the vocabulary are an error (nothing is
  // decoded). With `skip_special_tokens`, special added tokens contribute
  // nothing; otherwise they contribute their text. The result holds exactly
  // the bytes the tokens stand for, so a sequence that ends inside a
  // multi-byte character yields invalid UTF-8 (see StreamDecoder).
  StatusOr<std::string> Decode(std::span<const int32_t> ids,
                               bool skip_special_tokens = false) const;

  // One past the largest id: the model vocabulary plus added tokens.
  // (Qwen3: 151669, while its embedding has 151936 rows.)
  int64_t vocab_size() const;

  // Vocabulary strings as stored in tokenizer.json (byte-level form for
  // Qwen, e.g. "Ġworld"); added tokens by their text.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  std::optional<std::string_view> IdToToken(int32_t id) const;

  // Whether `id` is a special added token (skipped by skip_special_tokens).
  bool IsSpecial(int32_t id) const;

  // From tokenizer_config.json; nullopt when it names none.
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> pad_id() const;

  // The Jinja chat template the tokenizer files ship: tokenizer_config.json
  // "chat_template" (a string, or from a list of named templates the one
  // named "default"), else a chat_template.jinja file beside it; nullopt
  // when there is none. It is never executed: chat_template.h renders the
  // templates it knows natively and uses this text only to tell which one
  // (if any) the model was trained with.
  std::optional<std::string_view> chat_template() const;

 private:
  friend class StreamDecoder;
  friend StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(
      const std::filesystem::path& dir);
  friend StatusOr<std::unique_ptr<Tokenizer>> MakeByteTokenizer(
      int64_t vocab_size);

  explicit Tokenizer(
      std::unique_ptr<const tokenizer_internal::TokenizerParts> parts);

  std::unique_ptr<const tokenizer_internal::TokenizerParts> parts_;
};

// Loads `dir`/tokenizer.json and `dir`/tokenizer_config.json (both
// required). Every stage named in tokenizer.json must be one this library
// implements; an unknown type is an error rather than silently skipped. See
// normalizer.h, pre_tokenizer.h, bpe_model.h, post_processor.h and
// decoder.h for what is supported. "truncation" and "padding" are ignored:
// the runtime manages sequence lengths itself.
StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(
    const std::filesystem::path& dir);

// A tokenizer for presets without tokenizer files. Ids 0..255 are the raw
// bytes; then special tokens 256 "<|bos|>", 257 "<|eos|>", 258 "<|pad|>"
// (bos/eos/pad ids), and 259..vocab_size-1 are special "<|reserved_N|>"
// tokens (N = id) that Encode never produces. Only the first three are
// matched in text when parse_special is set; add_special_tokens puts BOS in
// front. Decode(Encode(x)) == x for any bytes x (with parse_special off, or
// when special tokens are not skipped). vocab_size must be at least 259.
StatusOr<std::unique_ptr<Tokenizer>> MakeByteTokenizer(int64_t vocab_size);

}  // namespace rlrt

#endif  // RLRT_MODELS_TOKENIZER_TOKENIZER_H_
