#include "models/tokenizer/added_tokens.h"

#include <algorithm>

namespace rlrt::tokenizer_internal {

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) {
  for (const AddedToken& token : tokens) {
    if (token.content.empty()) continue;
    by_first_byte_[static_cast<uint8_t>(token.content[0])].push_back(
        {token.content, token.id});
  }
  for (auto& entries : by_first_byte_) {
    std::stable_sort(entries.begin(), entries.end(),
                     [](const Entry& a, const Entry& b) {
                       return a.content.size() > b.content.size();
                     });
  }
}

void AddedTokenMatcher::Split(std::string_view text,
                              std::vector<Segment>* out) const {
  out->clear();
  size_t plain_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    const auto& entries = by_first_byte_[static_cast<uint8_t>(text[i])];
    const Entry* hit = nullptr;
    for (const Entry& e : entries) {
      if (text.compare(i, e.content.size(), e.content) == 0) {
        hit = &e;
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    if (i > plain_start) {
      out->push_back({text.substr(plain_start, i - plain_start), -1});
    }
    out->push_back({text.substr(i, hit->content.size()), hit->id});
    i += hit->content.size();
    plain_start = i;
  }
  if (i > plain_start) {
    out->push_back({text.substr(plain_start, i - plain_start), -1});
  }
}

}  // namespace rlrt::tokenizer_internal
