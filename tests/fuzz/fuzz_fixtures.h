// Fixed objects shared by the fuzz targets and the seed generator
// (make_seeds.cc): the seeds only exercise deep code paths if they match
// what the targets load, so both sides build them from here.
#ifndef RLRT_TESTS_FUZZ_FUZZ_FIXTURES_H_
#define RLRT_TESTS_FUZZ_FUZZ_FIXTURES_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "models/config/model_config.h"
#include "models/config/testing/tiny_config.h"
#include "models/leaf_spec.h"

// A broken contract: abort, which libFuzzer reports as a crash and saves
// the input. (assert would vanish under NDEBUG; this never does.)
#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, \
                   #cond);                                                     \
      std::fprintf(stderr, "  " __VA_ARGS__);                                  \
      std::fprintf(stderr, "\n");                                              \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

namespace rlrt::fuzz {

// A Qwen3 decoder small enough that a whole checkpoint is a few KB, so
// writing and loading one costs microseconds per fuzz iteration.
inline ModelConfig TinyConfig() {
  // The shared fixture's default shape is this one.
  return testing::TinyConfig(ModelType::kQwen3);
}

// Shards of at most this many bytes split TinyConfig's BF16 checkpoint into
// several files, so an index has something to get wrong.
inline constexpr size_t kTinyShardBytes = 600;
inline constexpr uint64_t kTinySeed = 7;

// The leaf list the UpdateParams target applies to: every dtype, a scalar,
// an empty leaf and an odd byte count, so length checks see each case.
inline std::vector<LeafSpec> UpdateLeafSpecs() {
  return {
      {"embed.weight", {3, 4}, DType::kF32},
      {"norm.weight", {5}, DType::kBF16},
      {"scale", {}, DType::kF32},
      {"empty.bias", {0, 3}, DType::kF16},
      {"proj.weight", {2, 3}, DType::kF16},
  };
}
// The version the target holds before each message: updates must be newer.
inline constexpr uint64_t kUpdateBaseVersion = 5;

// A fresh directory under /dev/shm (memory-backed: fuzz targets rewrite
// files there thousands of times a second), removed at exit. Per process,
// so parallel fuzzers (-jobs) do not share files.
inline std::filesystem::path ScratchDir(std::string_view name) {
  const std::filesystem::path dir =
      std::filesystem::path("/dev/shm") /
      ("rlrt-fuzz-" + std::string(name) + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  static std::vector<std::filesystem::path>* const dirs = [] {
    auto* list = new std::vector<std::filesystem::path>;
    std::atexit([] {
      std::error_code ec;
      for (const auto& d : *dirs) std::filesystem::remove_all(d, ec);
    });
    return list;
  }();
  dirs->push_back(dir);
  return dir;
}

// Replaces `path` with exactly `bytes`; aborts on failure, since a harness
// that silently tests a stale file finds nothing.
inline void WriteFileOrDie(const std::filesystem::path& path,
                           std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
}

}  // namespace rlrt::fuzz

#endif  // RLRT_TESTS_FUZZ_FUZZ_FIXTURES_H_
