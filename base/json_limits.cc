#include "base/json_limits.h"

#include <string>

namespace rlrt {

Status CheckJsonDepth(std::string_view text, std::string_view what,
                      int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) {
          return InvalidArgumentError(std::string(what) +
                                      ": JSON nested deeper than " +
                                      std::to_string(max_depth) + " levels");
        }
        break;
      case ']':
      case '}':
        // Unbalanced closers are the parser's to report.
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return OkStatus();
}

}  // namespace rlrt
