#include "models/tokenizer/stream_decoder.h"

#include <string_view>

#include "models/tokenizer/tokenizer_parts.h"
#include "models/tokenizer/utf8.h"

namespace rlrt {

using tokenizer_internal::IncompleteTailLength;

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer,
                             bool skip_special_tokens)
    : tokenizer_(tokenizer),
      skip_special_tokens_(skip_special_tokens),
      strip_left_(tokenizer.parts_->strip_count) {}

StatusOr<std::string> StreamDecoder::Next(int32_t id) {
  const auto& parts = *tokenizer_.parts_;
  if (!parts.table.Known(id)) {
    return InvalidArgumentError("StreamDecoder: id " + std::to_string(id) +
                                " is not in the vocabulary");
  }
  if (skip_special_tokens_ && parts.table.Special(id)) return std::string();
  std::string_view bytes = parts.table.Bytes(id);
  // Decode strips from the start of the whole text; the same bytes are at
  // the start here until something else has been produced.
  while (strip_left_ > 0 && bytes.starts_with(parts.strip_char)) {
    bytes.remove_prefix(parts.strip_char.size());
    --strip_left_;
  }
  if (!bytes.empty()) strip_left_ = 0;
  pending_ += bytes;
  const size_t hold = IncompleteTailLength(pending_);
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamDecoder::Flush() {
  std::string rest = std::move(pending_);
  pending_.clear();
  strip_left_ = tokenizer_.parts_->strip_count;
  return rest;
}

}  // namespace rlrt
