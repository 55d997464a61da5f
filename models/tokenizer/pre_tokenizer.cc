#include "models/tokenizer/pre_tokenizer.h"

#include <string>
#include <utility>

namespace rlrt::tokenizer_internal {
namespace {

constexpr std::string_view kPreTokenizerWhere = "tokenizer.json pre_tokenizer";

// The split that Hugging Face's ByteLevel pre-tokenizer performs when
// use_regex is true (the GPT-2 pattern); part of that component's definition.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

StatusOr<PreTokenizer> PreTokenizer::FromJson(const Json& json) {
  PreTokenizer pre;
  if (json.is_null()) return pre;
  RETURN_IF_ERROR(pre.Append(json, 0));
  return pre;
}

PreTokenizer PreTokenizer::ByteLevelOnly() {
  PreTokenizer pre;
  pre.byte_level_ = true;
  return pre;
}

Status PreTokenizer::Append(const Json& json, int depth) {
  RETURN_IF_ERROR(CheckDepth(depth, kPreTokenizerWhere));
  ASSIGN_OR_RETURN(const std::string type,
                   ComponentType(json, kPreTokenizerWhere));
  if (byte_level_) {
    // Later stages would see ByteLevel's mapped characters, which this
    // implementation never materialises.
    return UnimplementedError(std::string(kPreTokenizerWhere) + ": \"" + type +
                              "\" after ByteLevel is not supported");
  }
  if (type == "Sequence") {
    const Json* list = Find(json, "pretokenizers");
    if (list == nullptr || !list->is_array()) {
      return InvalidArgumentError(std::string(kPreTokenizerWhere) +
                                  ": Sequence needs a \"pretokenizers\" list");
    }
    for (const Json& item : *list) RETURN_IF_ERROR(Append(item, depth + 1));
    return OkStatus();
  }
  if (type == "Split") {
    ASSIGN_OR_RETURN(Pattern pattern, GetPattern(json, kPreTokenizerWhere));
    ASSIGN_OR_RETURN(std::string behavior,
                     GetString(json, "behavior", kPreTokenizerWhere));
    ASSIGN_OR_RETURN(bool invert,
                     GetBoolOr(json, "invert", false, kPreTokenizerWhere));
    if (!pattern.is_regex) {
      return UnimplementedError(std::string(kPreTokenizerWhere) +
                                ": Split with a String pattern is not "
                                "supported (only Regex)");
    }
    if (behavior != "Isolated" || invert) {
      return UnimplementedError(std::string(kPreTokenizerWhere) +
                                ": Split behavior \"" + behavior + "\"" +
                                (invert ? " (inverted)" : "") +
                                " is not supported (only Isolated)");
    }
    auto regex = Regex::Compile(pattern.text);
    if (!regex.ok()) return regex.status().WithContext(kPreTokenizerWhere);
    splits_.push_back(std::move(regex).value());
    return OkStatus();
  }
  if (type == "ByteLevel") {
    ASSIGN_OR_RETURN(bool prefix_space, GetBoolOr(json, "add_prefix_space",
                                                  false, kPreTokenizerWhere));
    ASSIGN_OR_RETURN(bool use_regex,
                     GetBoolOr(json, "use_regex", true, kPreTokenizerWhere));
    if (prefix_space) {
      return UnimplementedError(std::string(kPreTokenizerWhere) +
                                ": ByteLevel add_prefix_space=true is not "
                                "supported");
    }
    if (use_regex) {
      auto regex = Regex::Compile(kGpt2Pattern);
      if (!regex.ok()) return regex.status().WithContext(kPreTokenizerWhere);
      splits_.push_back(std::move(regex).value());
    }
    byte_level_ = true;
    return OkStatus();
  }
  return UnimplementedError(std::string(kPreTokenizerWhere) +
                            ": unsupported pre-tokenizer type \"" + type +
                            "\" (supported: Split, ByteLevel, Sequence)");
}

void PreTokenizer::Split(std::string_view text, std::vector<Span>* out) const {
  out->clear();
  if (text.empty()) return;
  out->push_back({0, text.size()});
  std::vector<Span> next;
  for (const auto& regex : splits_) {
    next.clear();
    for (const Span& piece : *out) {
      const size_t before = next.size();
      SplitIsolated(*regex, text.substr(piece.begin, piece.end - piece.begin),
                    &next);
      for (size_t i = before; i < next.size(); ++i) {
        next[i].begin += piece.begin;
        next[i].end += piece.begin;
      }
    }
    out->swap(next);
  }
}

}  // namespace rlrt::tokenizer_internal
