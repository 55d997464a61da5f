#include "models/tokenizer/decoder.h"

#include <utility>

#include "models/tokenizer/byte_level.h"
#include "models/tokenizer/utf8.h"

namespace rlrt::tokenizer_internal {
namespace {

constexpr std::string_view kDecoderWhere = "tokenizer.json decoder";

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "<0xNN>" -> the byte NN; anything else stays as it is.
void ByteFallback(std::string* token) {
  if (token->size() != 6 || token->compare(0, 3, "<0x") != 0 ||
      (*token)[5] != '>') {
    return;
  }
  const int hi = HexDigit((*token)[3]);
  const int lo = HexDigit((*token)[4]);
  if (hi < 0 || lo < 0) return;
  token->assign(1, static_cast<char>(hi * 16 + lo));
}

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = s->find(from, pos);
    if (hit == std::string::npos) break;
    out.append(*s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  if (pos == 0) return;  // No match: leave `s` untouched.
  out.append(*s, pos);
  s->swap(out);
}

void Strip(std::string* s, std::string_view ch, int start, int stop) {
  for (int i = 0; i < start && s->starts_with(ch); ++i) s->erase(0, ch.size());
  for (int i = 0; i < stop && s->ends_with(ch); ++i) {
    s->erase(s->size() - ch.size());
  }
}

}  // namespace

StatusOr<Decoder> Decoder::FromJson(const Json& json) {
  if (json.is_null()) {
    return UnimplementedError(std::string(kDecoderWhere) +
                              " is missing; a decoder is required");
  }
  Decoder decoder;
  RETURN_IF_ERROR(decoder.Append(json, 0));
  return decoder;
}

Decoder Decoder::ByteLevel() {
  Decoder decoder;
  decoder.per_token_.push_back({Kind::kByteLevel, "", ""});
  return decoder;
}

Status Decoder::Append(const Json& json, int depth) {
  RETURN_IF_ERROR(CheckDepth(depth, kDecoderWhere));
  ASSIGN_OR_RETURN(const std::string type, ComponentType(json, kDecoderWhere));
  if (type == "Sequence") {
    const Json* list = Find(json, "decoders");
    if (list == nullptr || !list->is_array()) {
      return InvalidArgumentError(std::string(kDecoderWhere) +
                                  ": Sequence needs a \"decoders\" list");
    }
    for (const Json& item : *list) RETURN_IF_ERROR(Append(item, depth + 1));
    return OkStatus();
  }
  if (type == "Fuse") {
    // Tokens are always concatenated; Fuse only marks that later steps see
    // the whole text instead of single tokens.
    fused_ = true;
    return OkStatus();
  }
  if (type == "Strip") {
    ASSIGN_OR_RETURN(std::string ch, GetString(json, "content", kDecoderWhere));
    ASSIGN_OR_RETURN(int64_t start, GetInt(json, "start", kDecoderWhere));
    ASSIGN_OR_RETURN(int64_t stop, GetInt(json, "stop", kDecoderWhere));
    if (ValidCharLength(ch) != ch.size() || ch.empty() || start < 0 ||
        stop < 0 || start > 1024 || stop > 1024) {
      return InvalidArgumentError(std::string(kDecoderWhere) +
                                  ": Strip needs one character and small "
                                  "non-negative start/stop");
    }
    if (!fused_) {
      per_token_.push_back({Kind::kStrip, std::move(ch), "",
                            static_cast<int>(start), static_cast<int>(stop)});
      return OkStatus();
    }
    if (stop != 0 || strip_count_ != 0) {
      return UnimplementedError(std::string(kDecoderWhere) +
                                ": after Fuse only one Strip of leading "
                                "characters is supported");
    }
    strip_char_ = std::move(ch);
    strip_count_ = static_cast<int>(start);
    return OkStatus();
  }
  if (fused_) {
    return UnimplementedError(std::string(kDecoderWhere) + ": \"" + type +
                              "\" after Fuse is not supported");
  }
  if (type == "ByteLevel") {
    per_token_.push_back({Kind::kByteLevel, "", ""});
  } else if (type == "ByteFallback") {
    per_token_.push_back({Kind::kByteFallback, "", ""});
  } else if (type == "Replace") {
    ASSIGN_OR_RETURN(Pattern pattern, GetPattern(json, kDecoderWhere));
    ASSIGN_OR_RETURN(std::string content,
                     GetString(json, "content", kDecoderWhere));
    if (pattern.is_regex || pattern.text.empty()) {
      return UnimplementedError(std::string(kDecoderWhere) +
                                ": Replace needs a non-empty String pattern");
    }
    per_token_.push_back(
        {Kind::kReplace, std::move(pattern.text), std::move(content)});
  } else {
    return UnimplementedError(
        std::string(kDecoderWhere) + ": unsupported decoder type \"" + type +
        "\" (supported: ByteLevel, ByteFallback, Replace, Fuse, Strip, "
        "Sequence)");
  }
  return OkStatus();
}

std::string Decoder::DecodeToken(std::string_view token) const {
  std::string s(token);
  for (const Step& step : per_token_) {
    switch (step.kind) {
      case Kind::kByteLevel: {
        // A token with characters outside the byte map (an added token such
        // as "<|im_end|>" is inside it, but one with a space is not) keeps
        // its own UTF-8 bytes, as in Hugging Face.
        std::optional<std::string> bytes = FromByteLevel(s);
        if (bytes) s = std::move(*bytes);
        break;
      }
      case Kind::kReplace:
        ReplaceAll(&s, step.from, step.to);
        break;
      case Kind::kByteFallback:
        ByteFallback(&s);
        break;
      case Kind::kStrip:
        Strip(&s, step.from, step.start, step.stop);
        break;
    }
  }
  return s;
}

}  // namespace rlrt::tokenizer_internal
