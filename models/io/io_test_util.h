// Helpers shared by the models/io tests: scratch directories and safetensors
// files assembled byte by byte, independently of the library's writer.
#ifndef RLRT_MODELS_IO_IO_TEST_UTIL_H_
#define RLRT_MODELS_IO_IO_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "models/config/model_config.h"
#include "models/config/testing/tiny_config.h"

namespace rlrt::testing {

// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "rlrt_io_test.XXXXXX")
            .string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void WriteBytes(const std::filesystem::path& path,
                       const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline std::string ReadBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline uint64_t ReadU64(const std::string& bytes, size_t at) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; --k) {
    v = (v << 8) | static_cast<unsigned char>(bytes.at(at + k));
  }
  return v;
}

inline std::string U64Bytes(uint64_t v) {
  std::string out(8, '\0');
  for (int k = 0; k < 8; ++k) out[k] = static_cast<char>((v >> (8 * k)) & 0xff);
  return out;
}

inline std::string FloatBytes(const std::vector<float>& values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

inline float FloatAt(const std::string& bytes, size_t at) {
  float f;
  std::memcpy(&f, bytes.data() + at, 4);
  return f;
}

// One tensor of a hand-made file.
struct RawTensor {
  std::string name;
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::string bytes;
  // Written instead of the back-to-back offsets when set.
  std::optional<std::pair<uint64_t, uint64_t>> offsets;
};

// The bytes of a safetensors file: header built with nlohmann (not with the
// code under test), padded to 8, data back to back in the order given.
inline std::string BuildSafetensors(const std::vector<RawTensor>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::string data;
  for (const RawTensor& t : tensors) {
    const uint64_t begin = data.size();
    data += t.bytes;
    const auto offsets = t.offsets.value_or(std::pair(begin, data.size()));
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offsets.first, offsets.second}}};
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return U64Bytes(text.size()) + text + data;
}

// A Llama config small enough to write by hand: 11 leaves (12 untied).
inline ModelConfig TinyLlama(bool tied) {
  return TinyConfig(ModelType::kLlama, {.vocab_size = 8,
                                        .hidden_size = 4,
                                        .intermediate_size = 6,
                                        .num_hidden_layers = 1,
                                        .num_attention_heads = 2,
                                        .num_key_value_heads = 1,
                                        .head_dim = 2,
                                        .max_position_embeddings = 16,
                                        .tie_word_embeddings = tied,
                                        .eos_token_id = 2});
}

// Element k of leaf i in GoodTensors: multiples of 1/4 below 64, so exact
// in BF16 and F16 too.
inline float GoodValue(size_t leaf, size_t k) {
  return static_cast<float>(leaf) * 2.0f + static_cast<float>(k % 16) * 0.25f -
         3.0f;
}

// Every leaf of the config as an F32 tensor, in leaf order.
inline std::vector<RawTensor> GoodTensors(const ModelConfig& config) {
  std::vector<RawTensor> out;
  const std::vector<LeafSpec> specs = LeafSpecsFor(config);
  for (size_t i = 0; i < specs.size(); ++i) {
    std::vector<float> values(specs[i].NumElements());
    for (size_t k = 0; k < values.size(); ++k) values[k] = GoodValue(i, k);
    out.push_back({specs[i].name, "F32", specs[i].shape, FloatBytes(values),
                   std::nullopt});
  }
  return out;
}

inline RawTensor* FindRaw(std::vector<RawTensor>& tensors,
                          const std::string& name) {
  for (RawTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  ADD_FAILURE() << "no tensor " << name;
  return nullptr;
}

}  // namespace rlrt::testing

#endif  // RLRT_MODELS_IO_IO_TEST_UTIL_H_
