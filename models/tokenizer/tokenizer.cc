#include "models/tokenizer/tokenizer.h"

#include <utility>

#include "models/tokenizer/tokenizer_parts.h"

namespace rlrt {

using tokenizer_internal::Segment;
using tokenizer_internal::Span;
using tokenizer_internal::TokenizerParts;

Tokenizer::Tokenizer(std::unique_ptr<const TokenizerParts> parts)
    : parts_(std::move(parts)) {}

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::Encode(std::string_view text,
                                       const EncodeOptions& options) const {
  const TokenizerParts& p = *parts_;
  std::vector<int32_t> ids;
  if (options.add_special_tokens) ids = p.post.prefix;
  ids.reserve(ids.size() + text.size() / 3 + 4);

  std::vector<Segment> segments;
  if (options.parse_special) {
    p.added.Split(text, &segments);
  } else if (!text.empty()) {
    segments.push_back({text, -1});
  }
  std::string normalized;
  std::vector<Span> pieces;
  for (const Segment& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    std::string_view plain = segment.text;
    if (!p.normalizer.is_identity()) {
      p.normalizer.Normalize(plain, &normalized);
      plain = normalized;
    }
    p.pre_tokenizer.Split(plain, &pieces);
    for (const Span& piece : pieces) {
      p.model.Encode(plain.substr(piece.begin, piece.end - piece.begin), &ids);
    }
  }
  if (options.add_special_tokens) {
    ids.insert(ids.end(), p.post.suffix.begin(), p.post.suffix.end());
  }
  return ids;
}

StatusOr<std::string> Tokenizer::Decode(std::span<const int32_t> ids,
                                        bool skip_special_tokens) const {
  const TokenizerParts& p = *parts_;
  size_t total = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!p.table.Known(ids[i])) {
      return InvalidArgumentError("Decode: id " + std::to_string(ids[i]) +
                                  " at position " + std::to_string(i) +
                                  " is not in the vocabulary (size " +
                                  std::to_string(p.table.size()) + ")");
    }
    total += p.table.Bytes(ids[i]).size();
  }
  std::string text;
  text.reserve(total);
  for (int32_t id : ids) {
    if (skip_special_tokens && p.table.Special(id)) continue;
    text += p.table.Bytes(id);
  }
  size_t strip = 0;
  for (int i = 0;
       i < p.strip_count &&
       std::string_view(text).substr(strip).starts_with(p.strip_char);
       ++i) {
    strip += p.strip_char.size();
  }
  text.erase(0, strip);
  return text;
}

int64_t Tokenizer::vocab_size() const { return parts_->table.size(); }

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  return parts_->table.Find(token);
}

std::optional<std::string_view> Tokenizer::IdToToken(int32_t id) const {
  if (!parts_->table.Known(id)) return std::nullopt;
  return parts_->table.Token(id);
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return parts_->table.Special(id);
}

std::optional<int32_t> Tokenizer::eos_id() const { return parts_->eos; }
std::optional<int32_t> Tokenizer::bos_id() const { return parts_->bos; }
std::optional<int32_t> Tokenizer::pad_id() const { return parts_->pad; }

std::optional<std::string_view> Tokenizer::chat_template() const {
  if (!parts_->chat_template) return std::nullopt;
  return *parts_->chat_template;
}

}  // namespace rlrt
