// Fuzzes LoadTokenizer on a fuzzed tokenizer.json. The input up to its first
// NUL byte is tokenizer.json and the rest tokenizer_config.json ("{}" when
// there is no NUL); a NUL can never occur inside JSON text, so the split
// costs the fuzzer nothing.
//
// Contract: an error (never Internal, which would be an exception the
// parsers let through), or a tokenizer whose every id decodes, whose Encode
// of any text yields only known ids, whose streamed decode equals Decode,
// and whose eos/bos/pad ids are known.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/tokenizer/stream_decoder.h"
#include "models/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace rlrt::fuzz {
namespace {

const std::filesystem::path& Dir() {
  static const std::filesystem::path* const dir =
      new std::filesystem::path(ScratchDir("tokenizer-json"));
  return *dir;
}

// Encodes `text` every way there is and checks the ids and their decoding.
void CheckEncode(const Tokenizer& tok, std::string_view text) {
  for (bool parse_special : {false, true}) {
    for (bool add_special : {false, true}) {
      EncodeOptions options;
      options.parse_special = parse_special;
      options.add_special_tokens = add_special;
      const std::vector<int32_t> ids = tok.Encode(text, options);
      for (int32_t id : ids) {
        FUZZ_CHECK(tok.IdToToken(id).has_value(), "Encode gave unknown id %d",
                   id);
      }
      for (bool skip : {false, true}) {
        StatusOr<std::string> decoded = tok.Decode(ids, skip);
        FUZZ_CHECK(decoded.ok(), "%s", decoded.status().ToString().c_str());
        StreamDecoder stream(tok, skip);
        std::string streamed;
        for (int32_t id : ids) {
          StatusOr<std::string> piece = stream.Next(id);
          FUZZ_CHECK(piece.ok(), "%s", piece.status().ToString().c_str());
          streamed += *piece;
        }
        streamed += stream.Flush();
        FUZZ_CHECK(streamed == *decoded,
                   "stream decode '%s' != Decode '%s' (skip_special=%d)",
                   streamed.c_str(), decoded->c_str(), skip);
      }
    }
  }
}

void CheckTokenizer(const Tokenizer& tok) {
  const int64_t vocab = tok.vocab_size();
  FUZZ_CHECK(vocab >= 0, "negative vocab_size");
  for (const auto& id : {tok.eos_id(), tok.bos_id(), tok.pad_id()}) {
    if (id) FUZZ_CHECK(tok.IdToToken(*id).has_value(), "unknown id %d", *id);
  }
  FUZZ_CHECK(!tok.IdToToken(-1) && !tok.IdToToken(static_cast<int32_t>(
                                       std::min<int64_t>(vocab, INT32_MAX))),
             "ids outside [0, vocab_size) are known");
  FUZZ_CHECK(!tok.Decode(std::vector<int32_t>{-1}).ok(), "decoded id -1");

  // Every id (up to a bound: a fuzzed vocabulary can be large) decodes, and
  // the token's text must survive encoding.
  const int32_t limit = static_cast<int32_t>(std::min<int64_t>(vocab, 300));
  std::string all;
  for (int32_t id = 0; id < limit; ++id) {
    const std::optional<std::string_view> token = tok.IdToToken(id);
    if (!token) continue;
    const std::optional<int32_t> back = tok.TokenToId(*token);
    FUZZ_CHECK(back.has_value(), "TokenToId misses token of id %d", id);
    StatusOr<std::string> text = tok.Decode(std::vector<int32_t>{id});
    FUZZ_CHECK(text.ok(), "%s", text.status().ToString().c_str());
    all += *text;
    if (id % 16 == 0) CheckEncode(tok, *text);
  }
  CheckEncode(tok, all);
  // Texts starting with multi-byte characters: decoders strip from the
  // start of the text, and such a character may arrive in several tokens.
  for (const char* probe :
       {"Hello, world! 123  \n\n x\xC3\xA9\xE4\xB8\xAD \xF0\x9F\x98\x80",
        "\xC3\xA9\xC3\xA9 a", "\xE2\x96\x81\xE2\x96\x81Hi \xE2\x96\x81",
        "\xC4\xA0 x", "\xC2\xA0\xC2\xA0", "\xE4\xB8\xAD\xE6\x96\x87",
        "\xF0\x9F\x98\x80!", "  lead", "\xFF\xC0 \x80<|im_end|><s></s>"}) {
    CheckEncode(tok, probe);
  }
}

void Run(std::string_view input) {
  const size_t nul = input.find('\0');
  const std::string_view json = input.substr(0, nul);
  const std::string_view config = nul == std::string_view::npos
                                      ? std::string_view("{}")
                                      : input.substr(nul + 1);
  WriteFileOrDie(Dir() / "tokenizer.json", json);
  WriteFileOrDie(Dir() / "tokenizer_config.json", config);
  StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(Dir());
  if (!tok.ok()) {
    FUZZ_CHECK(tok.status().code() != StatusCode::kInternal, "%s",
               tok.status().ToString().c_str());
    return;
  }
  CheckTokenizer(**tok);
}

}  // namespace
}  // namespace rlrt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rlrt::fuzz::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
