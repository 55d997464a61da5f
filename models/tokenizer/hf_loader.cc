// LoadTokenizer: builds a Tokenizer from Hugging Face tokenizer.json and
// tokenizer_config.json.
#include <exception>
#include <fstream>
#include <new>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "models/tokenizer/json_util.h"
#include "models/tokenizer/tokenizer.h"
#include "models/tokenizer/tokenizer_parts.h"

namespace rlrt {
namespace {

using tokenizer_internal::AddedToken;
using tokenizer_internal::AddedTokenMatcher;
using tokenizer_internal::BpeModel;
using tokenizer_internal::Decoder;
using tokenizer_internal::Find;
using tokenizer_internal::GetBoolOr;
using tokenizer_internal::GetInt;
using tokenizer_internal::GetString;
using tokenizer_internal::Json;
using tokenizer_internal::Normalizer;
using tokenizer_internal::PostProcessor;
using tokenizer_internal::PreTokenizer;
using tokenizer_internal::ReadJsonFile;
using tokenizer_internal::TokenizerParts;
using tokenizer_internal::TokenTable;

const Json& Member(const Json& root, std::string_view key) {
  static const Json* const kNull = new Json(nullptr);
  const Json* value = Find(root, key);
  return value == nullptr ? *kNull : *value;
}

StatusOr<std::vector<AddedToken>> ParseAddedTokens(const Json& root,
                                                   bool has_normalizer) {
  std::vector<AddedToken> tokens;
  const Json& list = Member(root, "added_tokens");
  if (list.is_null()) return tokens;
  if (!list.is_array()) {
    return InvalidArgumentError("tokenizer.json added_tokens must be a list");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where =
        "tokenizer.json added_tokens[" + std::to_string(i) + "]";
    const Json& item = list[i];
    AddedToken token;
    ASSIGN_OR_RETURN(int64_t id, GetInt(item, "id", where));
    if (id < 0 || id >= TokenTable::kMaxSize) {
      return OutOfRangeError(where + ".id " + std::to_string(id) +
                             " is out of range");
    }
    token.id = static_cast<int32_t>(id);
    ASSIGN_OR_RETURN(token.content, GetString(item, "content", where));
    if (token.content.empty()) {
      return InvalidArgumentError(where + ".content is empty");
    }
    ASSIGN_OR_RETURN(token.special, GetBoolOr(item, "special", false, where));
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      ASSIGN_OR_RETURN(bool set, GetBoolOr(item, flag, false, where));
      if (set) {
        return UnimplementedError(where + " (\"" + token.content +
                                  "\"): " + flag + "=true is not supported");
      }
    }
    // Matching a normalized added token would mean matching against the
    // normalized text; without a normalizer the two are the same.
    ASSIGN_OR_RETURN(bool normalized,
                     GetBoolOr(item, "normalized", !token.special, where));
    if (normalized && has_normalizer) {
      return UnimplementedError(where + " (\"" + token.content +
                                "\"): normalized=true is not supported "
                                "together with a normalizer");
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// eos_token and friends: a string, an AddedToken object {"content": ...},
// or null/missing.
StatusOr<std::optional<int32_t>> ConfigTokenId(const Json& config,
                                               std::string_view key,
                                               const TokenTable& table) {
  const std::string where = "tokenizer_config.json " + std::string(key);
  const Json& value = Member(config, key);
  if (value.is_null()) return std::optional<int32_t>();
  std::string content;
  if (value.is_string()) {
    content = value.get<std::string>();
  } else if (value.is_object()) {
    ASSIGN_OR_RETURN(content, GetString(value, "content", where));
  } else {
    return InvalidArgumentError(where + " must be a string, an object or null");
  }
  const std::optional<int32_t> id = table.Find(content);
  if (!id) {
    return InvalidArgumentError(where + " \"" + content +
                                "\" is not a token of this tokenizer");
  }
  return id;
}

// tokenizer_config.json "chat_template": a string; a list of {"name",
// "template"} objects, of which the one named "default" is the template (an
// empty string when none is: Hugging Face then refuses to pick one, and so
// will ChatTemplateFor); missing or null: a chat_template.jinja file in `dir`
// (where newer transformers versions save it), else none.
StatusOr<std::optional<std::string>> ConfigChatTemplate(
    const Json& config, const std::filesystem::path& dir) {
  constexpr std::string_view kWhere = "tokenizer_config.json chat_template";
  const Json& value = Member(config, "chat_template");
  if (value.is_string()) return std::optional(value.get<std::string>());
  if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string where =
          std::string(kWhere) + "[" + std::to_string(i) + "]";
      ASSIGN_OR_RETURN(const std::string name,
                       GetString(value[i], "name", where));
      ASSIGN_OR_RETURN(std::string text,
                       GetString(value[i], "template", where));
      if (name == "default") return std::optional(std::move(text));
    }
    return std::optional<std::string>("");
  }
  if (!value.is_null()) {
    return InvalidArgumentError(std::string(kWhere) +
                                " must be a string, a list or null");
  }
  const std::filesystem::path jinja = dir / "chat_template.jinja";
  std::error_code ec;
  if (!std::filesystem::exists(jinja, ec)) return std::optional<std::string>();
  std::ifstream in(jinja, std::ios::binary);
  if (!in) return DataLossError("cannot open " + jinja.string());
  std::ostringstream text;
  text << in.rdbuf();
  return std::optional(text.str());
}

StatusOr<std::unique_ptr<TokenizerParts>> BuildParts(
    const std::filesystem::path& dir) {
  ASSIGN_OR_RETURN(const Json root, ReadJsonFile(dir / "tokenizer.json"));
  if (!root.is_object()) {
    return InvalidArgumentError("tokenizer.json must hold a JSON object");
  }
  if (Find(root, "model") == nullptr) {
    return InvalidArgumentError("tokenizer.json has no \"model\"");
  }
  auto parts = std::make_unique<TokenizerParts>();
  ASSIGN_OR_RETURN(parts->normalizer,
                   Normalizer::FromJson(Member(root, "normalizer")));
  ASSIGN_OR_RETURN(parts->pre_tokenizer,
                   PreTokenizer::FromJson(Member(root, "pre_tokenizer")));
  ASSIGN_OR_RETURN(parts->model,
                   BpeModel::FromJson(Member(root, "model"),
                                      parts->pre_tokenizer.byte_level()));
  ASSIGN_OR_RETURN(const Decoder decoder,
                   Decoder::FromJson(Member(root, "decoder")));
  ASSIGN_OR_RETURN(parts->post,
                   PostProcessor::FromJson(Member(root, "post_processor")));
  ASSIGN_OR_RETURN(const std::vector<AddedToken> added,
                   ParseAddedTokens(root, !parts->normalizer.is_identity()));
  ASSIGN_OR_RETURN(parts->table,
                   TokenTable::Build(parts->model.vocab(), added, decoder));
  for (const auto* ids : {&parts->post.prefix, &parts->post.suffix}) {
    for (int32_t id : *ids) {
      if (!parts->table.Known(id)) {
        return InvalidArgumentError("tokenizer.json post_processor adds id " +
                                    std::to_string(id) +
                                    ", which is not in the vocabulary");
      }
    }
  }
  parts->added = AddedTokenMatcher(added);
  parts->strip_char = decoder.strip_char();
  parts->strip_count = decoder.strip_count();

  auto config = ReadJsonFile(dir / "tokenizer_config.json");
  if (!config.ok()) return config.status();
  if (!config->is_object()) {
    return InvalidArgumentError(
        "tokenizer_config.json must hold a JSON object");
  }
  ASSIGN_OR_RETURN(parts->eos,
                   ConfigTokenId(*config, "eos_token", parts->table));
  ASSIGN_OR_RETURN(parts->bos,
                   ConfigTokenId(*config, "bos_token", parts->table));
  ASSIGN_OR_RETURN(parts->pad,
                   ConfigTokenId(*config, "pad_token", parts->table));
  ASSIGN_OR_RETURN(parts->chat_template, ConfigChatTemplate(*config, dir));
  return parts;
}

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(
    const std::filesystem::path& dir) {
  StatusOr<std::unique_ptr<TokenizerParts>> parts = InternalError("unset");
  // The parsers check types before every read, so nothing here should
  // throw; this only keeps a missed case (or bad_alloc) from escaping the
  // library as an exception.
  try {
    parts = BuildParts(dir);
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory loading tokenizer from " +
                                  dir.string());
  } catch (const std::exception& e) {
    return InternalError("loading tokenizer from " + dir.string() + ": " +
                         e.what());
  }
  if (!parts.ok()) return parts.status().WithContext(dir.string());
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(parts).value()));
}

}  // namespace rlrt
