#include "examples/cli_support.h"

#include <malloc.h>

#include <filesystem>

namespace rlrt {

std::string ResolveTokenizerDir(const std::string& tokenizer_dir,
                                const std::string& model_dir) {
  if (!tokenizer_dir.empty()) return tokenizer_dir;
  if (!model_dir.empty() &&
      std::filesystem::exists(std::filesystem::path(model_dir) /
                              "tokenizer.json"))
    return model_dir;
  return RLRT_SHARED_DIR "/models/qwen3-tokenizer";
}

std::string JsonLine(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void ReturnLargeBuffersToTheSystem() {
  // Setting it also turns off glibc's dynamic adjustment of the threshold.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

std::vector<std::string> SplitList(const std::string& comma_separated) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= comma_separated.size()) {
    size_t end = comma_separated.find(',', start);
    if (end == std::string::npos) end = comma_separated.size();
    if (end > start)
      items.push_back(comma_separated.substr(start, end - start));
    start = end + 1;
  }
  return items;
}

}  // namespace rlrt
