#include "models/tokenizer/utf8.h"

namespace rlrt::tokenizer_internal {
namespace {

// The shape of a character from its lead byte: total length and the allowed
// range of the second byte (the later bytes are always 0x80-0xBF). The
// narrowed second-byte ranges are what exclude overlong forms, surrogates
// and code points above U+10FFFF.
struct LeadInfo {
  size_t length;  // 0: not a lead byte.
  unsigned char lo;
  unsigned char hi;
};

LeadInfo Lead(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};  // Continuation byte or overlong C0/C1.
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Number of bytes of `s` (at most info.length) that match the pattern of
// the character announced by its lead byte.
size_t MatchingPrefix(std::string_view s, const LeadInfo& info) {
  size_t n = 1;
  for (; n < info.length && n < s.size(); ++n) {
    const auto b = static_cast<unsigned char>(s[n]);
    const unsigned char lo = n == 1 ? info.lo : 0x80;
    const unsigned char hi = n == 1 ? info.hi : 0xBF;
    if (b < lo || b > hi) break;
  }
  return n;
}

}  // namespace

size_t ValidCharLength(std::string_view s) {
  if (s.empty()) return 0;
  const LeadInfo info = Lead(static_cast<unsigned char>(s[0]));
  if (info.length == 0) return 0;
  return MatchingPrefix(s, info) == info.length ? info.length : 0;
}

size_t IncompleteTailLength(std::string_view s) {
  // A character is at most 4 bytes, so only a lead byte among the last 3 can
  // start an unfinished one.
  const size_t first = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t i = s.size(); i-- > first;) {
    const LeadInfo info = Lead(static_cast<unsigned char>(s[i]));
    if (info.length == 0) continue;  // Continuation (or invalid) byte.
    const size_t tail = s.size() - i;
    if (tail >= info.length) return 0;  // Complete, or too long: not pending.
    return MatchingPrefix(s.substr(i), info) == tail ? tail : 0;
  }
  return 0;
}

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = ValidCharLength(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace rlrt::tokenizer_internal
