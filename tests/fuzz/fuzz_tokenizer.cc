// Fuzzes the real Qwen3 tokenizer with arbitrary bytes, read two ways:
//  - as text: Encode never fails and only produces known ids; with
//    parse_special off, Decode(Encode(x)) is exactly x in NFC (the Qwen3
//    normalizer; invalid UTF-8 bytes are kept as they are); with
//    parse_special on, the round trip is a fixed point after one pass
//    (added tokens are matched before normalizing, so NFC applies per
//    stretch, not to the whole text);
//  - as a list of little-endian int32 ids (mostly near the vocabulary's
//    range): Decode succeeds exactly when every id is known, and streaming
//    the ids through StreamDecoder yields the same text as Decode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/tokenizer/normalizer.h"
#include "models/tokenizer/stream_decoder.h"
#include "models/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace rlrt::fuzz {
namespace {

struct Fixture {
  std::unique_ptr<Tokenizer> tokenizer;
  tokenizer_internal::Normalizer nfc;
};

// Loaded once: parsing the 11 MB tokenizer.json takes seconds under ASan.
const Fixture& GetFixture() {
  static const Fixture* const fixture = [] {
    auto* f = new Fixture;
    auto loaded = LoadTokenizer(RLRT_SHARED_DIR "/models/qwen3-tokenizer");
    FUZZ_CHECK(loaded.ok(), "%s", loaded.status().ToString().c_str());
    f->tokenizer = std::move(loaded).value();
    auto nfc = tokenizer_internal::Normalizer::FromJson(
        tokenizer_internal::Json{{"type", "NFC"}});
    FUZZ_CHECK(nfc.ok(), "%s", nfc.status().ToString().c_str());
    f->nfc = std::move(nfc).value();
    return f;
  }();
  return *fixture;
}

std::string DecodeOrDie(const Tokenizer& tok, const std::vector<int32_t>& ids,
                        bool skip_special = false) {
  for (int32_t id : ids) {
    FUZZ_CHECK(tok.IdToToken(id).has_value(), "Encode produced unknown id %d",
               id);
  }
  StatusOr<std::string> text = tok.Decode(ids, skip_special);
  FUZZ_CHECK(text.ok(), "%s", text.status().ToString().c_str());
  return std::move(text).value();
}

// Streams `ids` one at a time; the pieces must add up to Decode's text, and
// an unknown id must be refused without disturbing what is held.
void CheckStream(const Tokenizer& tok, const std::vector<int32_t>& ids,
                 bool skip_special, const std::string& expected) {
  StreamDecoder stream(tok, skip_special);
  std::string streamed;
  for (int32_t id : ids) {
    if (!tok.IdToToken(id).has_value()) {
      FUZZ_CHECK(!stream.Next(id).ok(), "StreamDecoder took unknown id %d", id);
      continue;
    }
    StatusOr<std::string> piece = stream.Next(id);
    FUZZ_CHECK(piece.ok(), "%s", piece.status().ToString().c_str());
    streamed += *piece;
  }
  streamed += stream.Flush();
  FUZZ_CHECK(streamed == expected,
             "streamed %zu bytes, Decode gave %zu (skip_special=%d)",
             streamed.size(), expected.size(), skip_special);
}

void CheckText(const Fixture& f, std::string_view text) {
  const Tokenizer& tok = *f.tokenizer;

  EncodeOptions plain;
  plain.parse_special = false;
  const std::vector<int32_t> plain_ids = tok.Encode(text, plain);
  std::string expected;
  f.nfc.Normalize(text, &expected);
  const std::string plain_text = DecodeOrDie(tok, plain_ids);
  FUZZ_CHECK(plain_text == expected,
             "Decode(Encode(x)) != NFC(x): %zu vs %zu bytes", plain_text.size(),
             expected.size());
  for (int32_t id : plain_ids) {
    FUZZ_CHECK(!tok.IsSpecial(id), "plain text produced special id %d", id);
  }
  CheckStream(tok, plain_ids, false, plain_text);

  EncodeOptions special;
  special.add_special_tokens = true;
  const std::vector<int32_t> ids = tok.Encode(text, special);
  const std::string once = DecodeOrDie(tok, ids);
  const std::string twice = DecodeOrDie(tok, tok.Encode(once, special));
  FUZZ_CHECK(once == twice, "round trip is not a fixed point");
  CheckStream(tok, ids, false, once);
  CheckStream(tok, ids, true, DecodeOrDie(tok, ids, true));
}

void CheckIds(const Fixture& f, std::string_view bytes) {
  const Tokenizer& tok = *f.tokenizer;
  const int64_t vocab = tok.vocab_size();
  std::vector<int32_t> ids;
  bool all_known = true;
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    uint32_t raw;
    std::memcpy(&raw, bytes.data() + i, 4);
    // Mostly ids near [0, vocab) so valid lists are common; a 0xFF top
    // byte keeps the raw value to reach the extremes (negative, huge).
    int32_t id;
    if ((raw >> 24) == 0xFF) {
      std::memcpy(&id, &raw, 4);
    } else {
      id = static_cast<int32_t>(raw % static_cast<uint32_t>(vocab + 64)) - 32;
    }
    ids.push_back(id);
    all_known = all_known && tok.IdToToken(id).has_value();
  }
  for (bool skip : {false, true}) {
    StatusOr<std::string> text = tok.Decode(ids, skip);
    FUZZ_CHECK(text.ok() == all_known, "Decode ok=%d with all_known=%d",
               text.ok(), all_known);
    if (!all_known) {
      // The stream must refuse the unknown ids and decode the rest.
      std::vector<int32_t> known;
      for (int32_t id : ids) {
        if (tok.IdToToken(id).has_value()) known.push_back(id);
      }
      CheckStream(tok, ids, skip, DecodeOrDie(tok, known, skip));
    } else {
      CheckStream(tok, ids, skip, *text);
    }
  }
}

}  // namespace
}  // namespace rlrt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const rlrt::fuzz::Fixture& f = rlrt::fuzz::GetFixture();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  rlrt::fuzz::CheckText(f, input);
  rlrt::fuzz::CheckIds(f, input);
  return 0;
}
