#include "models/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

#include "models/tokenizer/utf8.h"

namespace rlrt::tokenizer_internal {
namespace {

pcre2_code* Code(void* code) { return static_cast<pcre2_code*>(code); }

std::string PcreMessage(int error_code) {
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(error_code, buffer, sizeof(buffer));
  if (n < 0) return "PCRE2 error " + std::to_string(error_code);
  return std::string(reinterpret_cast<const char*>(buffer), n);
}

// Frees the per-call match data however FindAll returns.
struct MatchData {
  explicit MatchData(pcre2_code* code)
      : data(pcre2_match_data_create_from_pattern(code, nullptr)) {}
  ~MatchData() { pcre2_match_data_free(data); }
  pcre2_match_data* data;
};

}  // namespace

StatusOr<std::unique_ptr<Regex>> Regex::Compile(std::string_view pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  // UCP makes \s, \d, \w and POSIX classes Unicode-aware, matching the
  // Oniguruma semantics the Hugging Face patterns were written for.
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()),
                                   pattern.size(), PCRE2_UTF | PCRE2_UCP,
                                   &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    return InvalidArgumentError("regex does not compile at offset " +
                                std::to_string(error_offset) + ": " +
                                PcreMessage(error_code) +
                                " (pattern: " + std::string(pattern) + ")");
  }
  // JIT is an optimisation only: if the platform lacks it, pcre2_match falls
  // back to the interpreter with the same results.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::unique_ptr<Regex>(new Regex(code));
}

Regex::~Regex() { pcre2_code_free(Code(code_)); }

void Regex::FindAll(std::string_view text, size_t base,
                    std::vector<Span>* out) const {
  MatchData match(Code(code_));
  if (match.data == nullptr) {  // Out of memory: keep the bytes, unsplit.
    if (!text.empty()) out->push_back({base, base + text.size()});
    return;
  }
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    // The caller guarantees valid UTF-8; skipping PCRE2's own check matters
    // because it would otherwise rescan the subject on every call.
    const int rc = pcre2_match(Code(code_), subject, text.size(), pos,
                               PCRE2_NO_UTF_CHECK, match.data, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      out->push_back({base + pos, base + text.size()});
      return;
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (end <= begin) {
      // An empty match contributes no piece; step over one character so the
      // search makes progress.
      if (begin >= text.size()) return;
      const size_t n = ValidCharLength(text.substr(begin));
      pos = begin + (n == 0 ? 1 : n);
      continue;
    }
    out->push_back({base + begin, base + end});
    pos = end;
  }
}

void SplitIsolated(const Regex& regex, std::string_view text,
                   std::vector<Span>* out) {
  std::vector<Span> matches;
  size_t offset = 0;
  ForEachUtf8Run(text, [&](std::string_view run, bool valid) {
    const size_t run_begin = offset;
    offset += run.size();
    if (!valid) {
      out->push_back({run_begin, offset});
      return;
    }
    matches.clear();
    regex.FindAll(run, run_begin, &matches);
    size_t cursor = run_begin;
    for (const Span& m : matches) {
      if (m.begin > cursor) out->push_back({cursor, m.begin});
      out->push_back(m);
      cursor = m.end;
    }
    if (offset > cursor) out->push_back({cursor, offset});
  });
}

}  // namespace rlrt::tokenizer_internal
