// Small pieces the example binaries share.
#ifndef RLRT_EXAMPLES_CLI_SUPPORT_H_
#define RLRT_EXAMPLES_CLI_SUPPORT_H_

#include <nlohmann/json.hpp>
#include <string>

namespace rlrt {

// The tokenizer directory a binary uses: `tokenizer_dir` when given, else
// `model_dir` when it holds a tokenizer.json, else the Qwen3 tokenizer in
// ../shared.
std::string ResolveTokenizerDir(const std::string& tokenizer_dir,
                                const std::string& model_dir);

// One JSON line. Generated text may end inside a multi-byte character (or
// a dummy model may emit byte tokens that never form one), so invalid UTF-8
// becomes U+FFFD instead of an exception.
std::string JsonLine(const nlohmann::json& value);

}  // namespace rlrt

#endif  // RLRT_EXAMPLES_CLI_SUPPORT_H_
