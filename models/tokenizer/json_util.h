// Exception-free access to nlohmann::json values for the tokenizer loaders.
// Files are parsed with exceptions disabled and every accessor checks the
// type before it reads, so malformed input becomes a Status that names the
// offending field instead of a thrown nlohmann exception.
#ifndef RLRT_MODELS_TOKENIZER_JSON_UTIL_H_
#define RLRT_MODELS_TOKENIZER_JSON_UTIL_H_

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace rlrt::tokenizer_internal {

using Json = nlohmann::json;

// Reads and parses a whole file; NotFound when it is missing, InvalidArgument
// when it is not valid JSON.
StatusOr<Json> ReadJsonFile(const std::filesystem::path& path);

// Parses `text`; `what` names the source in the error.
StatusOr<Json> ParseJson(std::string_view text, std::string_view what);

// The member `key` of `obj`, or nullptr when `obj` is not an object or has no
// such member. A JSON null member is returned as a pointer to null.
const Json* Find(const Json& obj, std::string_view key);

// True when `key` is missing or null.
bool IsAbsent(const Json& obj, std::string_view key);

// Typed members. `where` names `obj` in error messages, e.g.
// "tokenizer.json model".
StatusOr<std::string> GetString(const Json& obj, std::string_view key,
                                std::string_view where);
StatusOr<int64_t> GetInt(const Json& obj, std::string_view key,
                         std::string_view where);
// Missing or null gives `fallback`.
StatusOr<bool> GetBoolOr(const Json& obj, std::string_view key, bool fallback,
                         std::string_view where);

// The "type" string of a component object such as a normalizer.
StatusOr<std::string> ComponentType(const Json& component,
                                    std::string_view where);

// How deeply Sequence components may nest. Real files nest one level; the
// limit keeps a crafted file from exhausting the stack through recursion.
inline constexpr int kMaxComponentDepth = 8;

// InvalidArgument once `depth` exceeds kMaxComponentDepth.
Status CheckDepth(int depth, std::string_view where);

// The string held by a pattern object: {"String": s} or {"Regex": s}.
struct Pattern {
  bool is_regex = false;
  std::string text;
};
StatusOr<Pattern> GetPattern(const Json& obj, std::string_view where);

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_JSON_UTIL_H_
