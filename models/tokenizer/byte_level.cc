#include "models/tokenizer/byte_level.h"

#include <array>

#include "models/tokenizer/utf8.h"

namespace rlrt::tokenizer_internal {
namespace {

bool MapsToItself(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
         (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<std::string, 256> chars;   // byte -> UTF-8 of its character
  std::array<int16_t, 512> byte_of_cp;  // code point -> byte, or -1

  Tables() {
    byte_of_cp.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = MapsToItself(b) ? static_cast<char32_t>(b) : next++;
      AppendUtf8(cp, &chars[b]);
      byte_of_cp[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& GetTables() {
  static const Tables* const tables = new Tables();
  return *tables;
}

}  // namespace

std::string_view ByteLevelChar(uint8_t b) { return GetTables().chars[b]; }

std::string ToByteLevel(std::string_view bytes) {
  const Tables& t = GetTables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.chars[static_cast<uint8_t>(c)];
  return out;
}

std::optional<std::string> FromByteLevel(std::string_view chars) {
  const Tables& t = GetTables();
  std::string out;
  out.reserve(chars.size());
  size_t i = 0;
  while (i < chars.size()) {
    // Every mapped character is below U+0200, i.e. one or two UTF-8 bytes.
    const size_t n = ValidCharLength(chars.substr(i));
    char32_t cp;
    if (n == 1) {
      cp = static_cast<unsigned char>(chars[i]);
    } else if (n == 2) {
      cp = ((static_cast<unsigned char>(chars[i]) & 0x1F) << 6) |
           (static_cast<unsigned char>(chars[i + 1]) & 0x3F);
    } else {
      return std::nullopt;
    }
    if (cp >= t.byte_of_cp.size() || t.byte_of_cp[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(t.byte_of_cp[cp]));
    i += n;
  }
  return out;
}

}  // namespace rlrt::tokenizer_internal
