#include "models/tokenizer/post_processor.h"

#include <limits>
#include <string>

namespace rlrt::tokenizer_internal {
namespace {

constexpr std::string_view kWhere = "tokenizer.json post_processor";

StatusOr<std::vector<int32_t>> SpecialTokenIds(const Json& processor,
                                               const std::string& name) {
  const std::string where =
      std::string(kWhere) + ".special_tokens[\"" + name + "\"]";
  const Json* specials = Find(processor, "special_tokens");
  const Json* entry = specials == nullptr ? nullptr : Find(*specials, name);
  if (entry == nullptr) {
    return InvalidArgumentError(where + " is missing but the template uses it");
  }
  const Json* ids = Find(*entry, "ids");
  if (ids == nullptr || !ids->is_array()) {
    return InvalidArgumentError(where + ".ids must be a list");
  }
  std::vector<int32_t> out;
  for (const Json& id : *ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return InvalidArgumentError(where + ".ids holds an invalid id");
    }
    out.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return out;
}

Status ParseTemplate(const Json& processor, PostProcessor* out) {
  const Json* single = Find(processor, "single");
  if (single == nullptr || !single->is_array()) {
    return InvalidArgumentError(std::string(kWhere) +
                                ": TemplateProcessing needs a \"single\" list");
  }
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
  bool seen_sequence = false;
  for (const Json& item : *single) {
    if (const Json* special = Find(item, "SpecialToken")) {
      ASSIGN_OR_RETURN(std::string name,
                       GetString(*special, "id",
                                 std::string(kWhere) + ".single.SpecialToken"));
      ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                       SpecialTokenIds(processor, name));
      auto& target = seen_sequence ? suffix : prefix;
      target.insert(target.end(), ids.begin(), ids.end());
    } else if (const Json* sequence = Find(item, "Sequence")) {
      ASSIGN_OR_RETURN(
          std::string name,
          GetString(*sequence, "id", std::string(kWhere) + ".single.Sequence"));
      if (name != "A" || seen_sequence) {
        return InvalidArgumentError(std::string(kWhere) +
                                    ": the single template must hold the "
                                    "sequence \"A\" exactly once");
      }
      seen_sequence = true;
    } else {
      return InvalidArgumentError(
          std::string(kWhere) +
          ": template items must be SpecialToken or Sequence");
    }
  }
  if (!seen_sequence) {
    return InvalidArgumentError(std::string(kWhere) +
                                ": the single template lacks sequence \"A\"");
  }
  // A later processor wraps what the earlier ones produced.
  out->prefix.insert(out->prefix.begin(), prefix.begin(), prefix.end());
  out->suffix.insert(out->suffix.end(), suffix.begin(), suffix.end());
  return OkStatus();
}

Status Append(const Json& json, int depth, PostProcessor* out) {
  RETURN_IF_ERROR(CheckDepth(depth, kWhere));
  ASSIGN_OR_RETURN(const std::string type, ComponentType(json, kWhere));
  if (type == "Sequence") {
    const Json* list = Find(json, "processors");
    if (list == nullptr || !list->is_array()) {
      return InvalidArgumentError(std::string(kWhere) +
                                  ": Sequence needs a \"processors\" list");
    }
    for (const Json& item : *list) {
      RETURN_IF_ERROR(Append(item, depth + 1, out));
    }
    return OkStatus();
  }
  if (type == "ByteLevel") return OkStatus();
  if (type == "TemplateProcessing") return ParseTemplate(json, out);
  return UnimplementedError(
      std::string(kWhere) + ": unsupported post-processor type \"" + type +
      "\" (supported: TemplateProcessing, ByteLevel, Sequence)");
}

}  // namespace

StatusOr<PostProcessor> PostProcessor::FromJson(const Json& json) {
  PostProcessor processor;
  if (json.is_null()) return processor;
  RETURN_IF_ERROR(Append(json, 0, &processor));
  return processor;
}

}  // namespace rlrt::tokenizer_internal
