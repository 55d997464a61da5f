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
  pending_ += parts.table.Bytes(id);
  if (strip_left_ > 0) {
    // Decode strips from the start of the whole text. Until a strip has
    // been ruled out nothing is returned, so pending_ holds that start
    // here, and a strip character split over several tokens (a multi-byte
    // one spelled in byte-fallback tokens) is held until it is whole or
    // proves not to be one.
    const std::string_view strip = parts.strip_char;
    while (strip_left_ > 0 && pending_.starts_with(strip)) {
      pending_.erase(0, strip.size());
      --strip_left_;
    }
    if (strip_left_ > 0 && strip.starts_with(pending_)) return std::string();
    strip_left_ = 0;
  }
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
