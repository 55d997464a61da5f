// Small ASCII string helpers shared by parsers of outside text (HTTP header
// values, GSM8K answers).
#ifndef RLRT_BASE_STRINGS_H_
#define RLRT_BASE_STRINGS_H_

#include <cctype>
#include <string>
#include <string_view>

namespace rlrt {

// `s` without leading and trailing ASCII whitespace.
inline std::string_view TrimWhitespace(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

// `s` with ASCII letters lower-cased.
inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace rlrt

#endif  // RLRT_BASE_STRINGS_H_
