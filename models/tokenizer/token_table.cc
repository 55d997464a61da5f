#include "models/tokenizer/token_table.h"

#include <algorithm>

namespace rlrt::tokenizer_internal {

StatusOr<TokenTable> TokenTable::Build(const TokenMap& vocab,
                                       const std::vector<AddedToken>& added,
                                       const Decoder& decoder) {
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab) max_id = std::max<int64_t>(max_id, id);
  for (const AddedToken& t : added) {
    if (t.id < 0) {
      return OutOfRangeError("added token \"" + t.content +
                             "\" has a negative id");
    }
    max_id = std::max<int64_t>(max_id, t.id);
  }
  if (max_id + 1 > kMaxSize) {
    return OutOfRangeError("token id " + std::to_string(max_id) +
                           " is too large (limit " +
                           std::to_string(kMaxSize - 1) + ")");
  }
  TokenTable table;
  const size_t size = static_cast<size_t>(max_id + 1);
  table.tokens_.resize(size);
  table.flags_.assign(size, 0);
  table.ids_ = vocab;
  for (const auto& [token, id] : vocab) {
    table.tokens_[id] = token;
    table.flags_[id] = kKnown;
  }
  for (const AddedToken& t : added) {
    if (t.content.empty()) {
      return InvalidArgumentError("added token " + std::to_string(t.id) +
                                  " has empty content");
    }
    auto [it, inserted] = table.ids_.emplace(t.content, t.id);
    if (!inserted && it->second != t.id) {
      return InvalidArgumentError(
          "added token \"" + t.content + "\" has id " + std::to_string(t.id) +
          " but the vocabulary gives it id " + std::to_string(it->second));
    }
    if ((table.flags_[t.id] & kKnown) && table.tokens_[t.id] != t.content) {
      return InvalidArgumentError("id " + std::to_string(t.id) + " is both \"" +
                                  table.tokens_[t.id] +
                                  "\" and added token \"" + t.content + "\"");
    }
    table.tokens_[t.id] = t.content;
    table.flags_[t.id] = kKnown | (t.special ? kSpecial : 0);
  }
  table.offsets_.reserve(size + 1);
  for (size_t id = 0; id < size; ++id) {
    table.offsets_.push_back(static_cast<uint32_t>(table.bytes_.size()));
    if (table.flags_[id] & kKnown) {
      table.bytes_ += decoder.DecodeToken(table.tokens_[id]);
      if (table.bytes_.size() > UINT32_MAX) {
        return ResourceExhaustedError("decoded vocabulary exceeds 4 GiB");
      }
    }
  }
  table.offsets_.push_back(static_cast<uint32_t>(table.bytes_.size()));
  return table;
}

std::optional<int32_t> TokenTable::Find(std::string_view token) const {
  auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

}  // namespace rlrt::tokenizer_internal
