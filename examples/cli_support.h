// Small pieces the example binaries share.
#ifndef RLRT_EXAMPLES_CLI_SUPPORT_H_
#define RLRT_EXAMPLES_CLI_SUPPORT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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

// For long-running processes that handle large transient buffers (update
// bodies, staging checkpoints, serialized updates) on many threads: with
// glibc's default, the mmap threshold rises to the size of the first such
// buffer freed, after which they come from per-thread arenas that keep the
// memory, and resident size climbs with the number of threads (measured in
// the soak: a rollout server from 160 MB to 950 MB). A fixed 1 MiB
// threshold maps each large buffer on its own and returns it when freed.
void ReturnLargeBuffersToTheSystem();

// The non-empty items of a comma-separated flag value.
std::vector<std::string> SplitList(const std::string& comma_separated);

}  // namespace rlrt

#endif  // RLRT_EXAMPLES_CLI_SUPPORT_H_
