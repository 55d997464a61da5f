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

}  // namespace rlrt
