// Shared data for the tokenizer tests. The files live in the read-only shared
// folder; a missing file fails the test (it is never skipped).
#ifndef RLRT_MODELS_TOKENIZER_TEST_DATA_H_
#define RLRT_MODELS_TOKENIZER_TEST_DATA_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "models/tokenizer/tokenizer.h"

namespace rlrt::testing {

inline std::filesystem::path SharedPath(const std::string& relative) {
  return std::filesystem::path(RLRT_SHARED_DIR) / relative;
}

inline std::filesystem::path QwenDir() {
  return SharedPath("models/qwen3-tokenizer");
}
inline std::filesystem::path StoriesDir() {
  return SharedPath("models/stories260K");
}
inline std::filesystem::path VectorsDir() {
  return SharedPath("data/tokenizer-vectors");
}

// The whole file; an empty string (and a test failure) if it cannot be read.
inline std::string ReadFileOrFail(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing test data: " << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline nlohmann::json ReadJsonOrFail(const std::filesystem::path& path) {
  nlohmann::json j =
      nlohmann::json::parse(ReadFileOrFail(path), nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << path;
  return j;
}

// Loaded once per test binary; parsing the 11 MB Qwen file takes a while.
// Null (with a failure recorded) if loading fails.
inline const Tokenizer* QwenTokenizer() {
  static const StatusOr<std::unique_ptr<Tokenizer>>* const loaded =
      new StatusOr<std::unique_ptr<Tokenizer>>(LoadTokenizer(QwenDir()));
  EXPECT_TRUE(loaded->ok()) << loaded->status();
  return loaded->ok() ? loaded->value().get() : nullptr;
}

inline const Tokenizer* StoriesTokenizer() {
  static const StatusOr<std::unique_ptr<Tokenizer>>* const loaded =
      new StatusOr<std::unique_ptr<Tokenizer>>(LoadTokenizer(StoriesDir()));
  EXPECT_TRUE(loaded->ok()) << loaded->status();
  return loaded->ok() ? loaded->value().get() : nullptr;
}

inline std::vector<int32_t> Ids(const nlohmann::json& list) {
  return list.get<std::vector<int32_t>>();
}

}  // namespace rlrt::testing

#endif  // RLRT_MODELS_TOKENIZER_TEST_DATA_H_
