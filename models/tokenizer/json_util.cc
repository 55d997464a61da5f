#include "models/tokenizer/json_util.h"

#include <fstream>
#include <sstream>
#include <system_error>

#include "base/json_limits.h"

namespace rlrt::tokenizer_internal {
namespace {

std::string Where(std::string_view where, std::string_view key) {
  std::string s(where);
  s += ".";
  s += key;
  return s;
}

}  // namespace

StatusOr<Json> ReadJsonFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFoundError("no such file: " + path.string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot open " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return DataLossError("error reading " + path.string());
  return ParseJson(buffer.str(), path.string());
}

StatusOr<Json> ParseJson(std::string_view text, std::string_view what) {
  RETURN_IF_ERROR(CheckJsonDepth(text, what));
  Json json = Json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return InvalidArgumentError(std::string(what) + " is not valid JSON");
  }
  return json;
}

const Json* Find(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool IsAbsent(const Json& obj, std::string_view key) {
  const Json* value = Find(obj, key);
  return value == nullptr || value->is_null();
}

StatusOr<std::string> GetString(const Json& obj, std::string_view key,
                                std::string_view where) {
  const Json* value = Find(obj, key);
  if (value == nullptr) {
    return InvalidArgumentError(Where(where, key) + " is missing");
  }
  if (!value->is_string()) {
    return InvalidArgumentError(Where(where, key) + " must be a string");
  }
  return value->get_ref<const std::string&>();
}

StatusOr<int64_t> GetInt(const Json& obj, std::string_view key,
                         std::string_view where) {
  const Json* value = Find(obj, key);
  if (value == nullptr) {
    return InvalidArgumentError(Where(where, key) + " is missing");
  }
  if (value->is_number_unsigned()) {
    const uint64_t v = value->get<uint64_t>();
    if (v > static_cast<uint64_t>(INT64_MAX)) {
      return OutOfRangeError(Where(where, key) + " is too large");
    }
    return static_cast<int64_t>(v);
  }
  if (!value->is_number_integer()) {
    return InvalidArgumentError(Where(where, key) + " must be an integer");
  }
  return value->get<int64_t>();
}

StatusOr<bool> GetBoolOr(const Json& obj, std::string_view key, bool fallback,
                         std::string_view where) {
  const Json* value = Find(obj, key);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_boolean()) {
    return InvalidArgumentError(Where(where, key) + " must be a boolean");
  }
  return value->get<bool>();
}

StatusOr<std::string> ComponentType(const Json& component,
                                    std::string_view where) {
  if (!component.is_object()) {
    return InvalidArgumentError(std::string(where) + " must be an object");
  }
  return GetString(component, "type", where);
}

Status CheckDepth(int depth, std::string_view where) {
  if (depth <= kMaxComponentDepth) return OkStatus();
  return InvalidArgumentError(std::string(where) +
                              ": Sequence nested more than " +
                              std::to_string(kMaxComponentDepth) + " deep");
}

StatusOr<Pattern> GetPattern(const Json& obj, std::string_view where) {
  const Json* pattern = Find(obj, "pattern");
  const std::string at = Where(where, "pattern");
  if (pattern == nullptr || !pattern->is_object() || pattern->size() != 1) {
    return InvalidArgumentError(
        at + " must be an object {\"String\": ...} or {\"Regex\": ...}");
  }
  Pattern result;
  if (Find(*pattern, "Regex") != nullptr) {
    result.is_regex = true;
    ASSIGN_OR_RETURN(result.text, GetString(*pattern, "Regex", at));
  } else if (Find(*pattern, "String") != nullptr) {
    ASSIGN_OR_RETURN(result.text, GetString(*pattern, "String", at));
  } else {
    return InvalidArgumentError(at + " must hold \"String\" or \"Regex\"");
  }
  return result;
}

}  // namespace rlrt::tokenizer_internal
