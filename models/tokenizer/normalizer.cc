#include "models/tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <utility>

#include "models/tokenizer/utf8.h"

namespace rlrt::tokenizer_internal {
namespace {

constexpr std::string_view kWhere = "tokenizer.json normalizer";

utf8proc_option_t UnicodeOptions(bool compose, bool compat) {
  int options =
      UTF8PROC_STABLE | (compose ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE);
  if (compat) options |= UTF8PROC_COMPAT;
  return static_cast<utf8proc_option_t>(options);
}

// Appends the normalization of one valid UTF-8 run.
void AppendUnicodeForm(std::string_view run, utf8proc_option_t options,
                       std::string* out) {
  // ASCII is invariant under all four forms, and most prompts are ASCII.
  if (IsAscii(run)) {
    out->append(run);
    return;
  }
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
                   static_cast<utf8proc_ssize_t>(run.size()), &mapped, options);
  if (n < 0) {
    // Only out of memory is possible for valid input; keep the text as is
    // rather than lose it.
    out->append(run);
  } else {
    out->append(reinterpret_cast<const char*>(mapped), n);
  }
  std::free(mapped);
}

void ApplyUnicodeForm(std::string_view text, utf8proc_option_t options,
                      std::string* out) {
  out->clear();
  ForEachUtf8Run(text, [&](std::string_view run, bool valid) {
    if (valid) {
      AppendUnicodeForm(run, options, out);
    } else {
      out->append(run);
    }
  });
}

void ReplaceAll(std::string_view text, std::string_view from,
                std::string_view to, std::string* out) {
  // `from` is valid UTF-8 and UTF-8 is self-synchronising, so a byte search
  // never matches inside another character, even next to invalid bytes.
  out->clear();
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out->append(text.substr(pos, hit - pos));
    out->append(to);
    pos = hit + from.size();
  }
  out->append(text.substr(pos));
}

}  // namespace

StatusOr<Normalizer> Normalizer::FromJson(const Json& json) {
  Normalizer normalizer;
  if (json.is_null()) return normalizer;
  RETURN_IF_ERROR(Append(json, 0, &normalizer.steps_));
  return normalizer;
}

Status Normalizer::Append(const Json& json, int depth,
                          std::vector<Step>* steps) {
  RETURN_IF_ERROR(CheckDepth(depth, kWhere));
  ASSIGN_OR_RETURN(const std::string type, ComponentType(json, kWhere));
  if (type == "Sequence") {
    const Json* list = Find(json, "normalizers");
    if (list == nullptr || !list->is_array()) {
      return InvalidArgumentError(std::string(kWhere) +
                                  ": Sequence needs a \"normalizers\" list");
    }
    for (const Json& item : *list) {
      RETURN_IF_ERROR(Append(item, depth + 1, steps));
    }
    return OkStatus();
  }
  if (type == "NFC") {
    steps->push_back({Kind::kNfc, "", ""});
  } else if (type == "NFD") {
    steps->push_back({Kind::kNfd, "", ""});
  } else if (type == "NFKC") {
    steps->push_back({Kind::kNfkc, "", ""});
  } else if (type == "NFKD") {
    steps->push_back({Kind::kNfkd, "", ""});
  } else if (type == "Prepend") {
    ASSIGN_OR_RETURN(std::string prefix, GetString(json, "prepend", kWhere));
    if (!IsValidUtf8(prefix)) {
      return InvalidArgumentError(std::string(kWhere) +
                                  ": Prepend text is not valid UTF-8");
    }
    steps->push_back({Kind::kPrepend, "", std::move(prefix)});
  } else if (type == "Replace") {
    ASSIGN_OR_RETURN(Pattern pattern, GetPattern(json, kWhere));
    ASSIGN_OR_RETURN(std::string content, GetString(json, "content", kWhere));
    if (pattern.is_regex) {
      return UnimplementedError(std::string(kWhere) +
                                ": Replace with a Regex pattern is not "
                                "supported (only String patterns)");
    }
    if (pattern.text.empty()) {
      return InvalidArgumentError(std::string(kWhere) +
                                  ": Replace pattern is empty");
    }
    steps->push_back(
        {Kind::kReplace, std::move(pattern.text), std::move(content)});
  } else {
    return UnimplementedError(
        std::string(kWhere) + ": unsupported normalizer type \"" + type +
        "\" (supported: NFC, NFD, NFKC, NFKD, Prepend, Replace, Sequence)");
  }
  return OkStatus();
}

void Normalizer::Normalize(std::string_view text, std::string* out) const {
  out->assign(text);
  std::string scratch;
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Kind::kNfc:
        ApplyUnicodeForm(*out, UnicodeOptions(true, false), &scratch);
        break;
      case Kind::kNfd:
        ApplyUnicodeForm(*out, UnicodeOptions(false, false), &scratch);
        break;
      case Kind::kNfkc:
        ApplyUnicodeForm(*out, UnicodeOptions(true, true), &scratch);
        break;
      case Kind::kNfkd:
        ApplyUnicodeForm(*out, UnicodeOptions(false, true), &scratch);
        break;
      case Kind::kPrepend:
        // As in Hugging Face tokenizers: empty text stays empty.
        if (out->empty()) continue;
        scratch = step.to;
        scratch += *out;
        break;
      case Kind::kReplace:
        ReplaceAll(*out, step.from, step.to, &scratch);
        break;
    }
    out->swap(scratch);
  }
}

}  // namespace rlrt::tokenizer_internal
