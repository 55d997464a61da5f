#include "models/io/checkpoint.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "models/io/io_test_util.h"
#include "models/io/safetensors.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::AllocateOrDie;
using testing::BuildSafetensors;
using testing::FindRaw;
using testing::FloatAt;
using testing::GoodTensors;
using testing::GoodValue;
using testing::MakeMesh;
using testing::RawTensor;
using testing::ReadBytes;
using testing::ReadU64;
using testing::SameBytes;
using testing::TempDir;
using testing::TinyLlama;
using testing::U64Bytes;
using testing::WriteBytes;

namespace fs = std::filesystem;

ModelConfig SmallQwen3(bool tied) {
  ModelConfig c = *PresetConfig("qwen3-tiny");
  c.vocab_size = 96;
  c.num_hidden_layers = 2;
  c.intermediate_size = 64;
  c.tie_word_embeddings = tied;
  c.eos_token_ids = {1};
  return c;
}

ModelConfig SmallQwen2() {
  ModelConfig c = SmallQwen3(/*tied=*/false);
  c.model_type = ModelType::kQwen2;
  c.attention_bias = true;
  c.qk_norm = false;
  return c;
}

ParamLeaves RandomLeaves(const ModelConfig& config, uint64_t seed) {
  ParamLeaves leaves = AllocateOrDie(LeafSpecsFor(config));
  EXPECT_TRUE(FillDummy(leaves, seed).ok());
  return leaves;
}

std::set<std::string> FileNames(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    names.insert(e.path().filename().string());
  }
  return names;
}

void ExpectConfigsMatch(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(ModelConfigToJson(a), ModelConfigToJson(b));
}

TEST(CheckpointTest, SingleFileRoundTripF32) {
  for (bool tied : {false, true}) {
    TempDir dir;
    const ModelConfig config = SmallQwen3(tied);
    const ParamLeaves leaves = RandomLeaves(config, 11);
    ASSERT_TRUE(SaveCheckpoint(leaves, config, dir.path()).ok());
    EXPECT_EQ(FileNames(dir.path()),
              (std::set<std::string>{"config.json", "model.safetensors"}));
    auto file = SafetensorsFile::Open(dir.path() / "model.safetensors");
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ(file->metadata().at("format"), "pt");
    // Tied checkpoints carry no lm_head.weight, as transformers saves them.
    EXPECT_EQ(file->Find("lm_head.weight") != nullptr, !tied);
    EXPECT_EQ(file->tensors().size(), leaves.size());

    for (int workers : {0, 3}) {
      auto mesh = workers > 0 ? MakeMesh(workers) : nullptr;
      auto loaded = LoadCheckpoint(dir.path(), mesh.get());
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      ExpectConfigsMatch(loaded->config, config);
      EXPECT_TRUE(SameBytes(loaded->leaves, leaves)) << workers;
    }
  }
}

TEST(CheckpointTest, ShardedRoundTripF32) {
  TempDir dir;
  const ModelConfig config = SmallQwen3(/*tied=*/false);
  const ParamLeaves leaves = RandomLeaves(config, 12);
  // Embedding and lm_head (12 KiB each) are above the limit and get shards of
  // their own; the small leaves share.
  SaveCheckpointOptions options;
  options.max_shard_bytes = 10000;
  ASSERT_TRUE(SaveCheckpoint(leaves, config, dir.path(), options).ok());

  const std::string index_text =
      ReadBytes(dir.path() / "model.safetensors.index.json");
  const auto index = nlohmann::json::parse(index_text);
  EXPECT_EQ(index["metadata"]["total_size"], leaves.total_bytes());
  const auto& weight_map = index["weight_map"];
  ASSERT_EQ(weight_map.size(), leaves.size());
  std::set<std::string> shards;
  for (const auto& [name, shard] : weight_map.items()) {
    shards.insert(shard.get<std::string>());
  }
  const size_t n = shards.size();
  ASSERT_GT(n, 2u);
  std::set<std::string> expected_files = {"config.json",
                                          "model.safetensors.index.json"};
  char name[64];
  for (size_t i = 1; i <= n; ++i) {
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i, n);
    EXPECT_TRUE(shards.contains(name)) << name;
    expected_files.insert(name);
  }
  EXPECT_EQ(FileNames(dir.path()), expected_files);
  // Each leaf is in the shard the index names, and shards hold leaves in
  // list order, within the size limit unless alone.
  size_t last_shard = 0;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const std::string shard = weight_map[leaves.spec(i).name];
    auto file = SafetensorsFile::Open(dir.path() / shard);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_NE(file->Find(leaves.spec(i).name), nullptr);
    const size_t number = std::stoul(shard.substr(6, 5));
    EXPECT_GE(number, last_shard);
    last_shard = number;
    uint64_t bytes = 0;
    for (const auto& t : file->tensors()) bytes += t.data.size();
    EXPECT_TRUE(bytes <= options.max_shard_bytes || file->tensors().size() == 1)
        << shard;
  }
  auto mesh = MakeMesh(2);
  auto loaded = LoadCheckpoint(dir.path(), mesh.get());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(SameBytes(loaded->leaves, leaves));
}

TEST(CheckpointTest, Bf16RoundTripRoundsEachValueOnce) {
  for (size_t max_shard : {size_t{2} << 30, size_t{8000}}) {
    TempDir dir;
    const ModelConfig config = SmallQwen3(/*tied=*/true);
    const ParamLeaves leaves = RandomLeaves(config, 13);
    SaveCheckpointOptions options;
    options.dtype = DType::kBF16;
    options.max_shard_bytes = max_shard;
    ASSERT_TRUE(SaveCheckpoint(leaves, config, dir.path(), options).ok());
    auto config_back = LoadModelConfig(dir.path());
    ASSERT_TRUE(config_back.ok());
    EXPECT_EQ(config_back->torch_dtype, "bfloat16");
    if (max_shard > 100000) {
      auto file = SafetensorsFile::Open(dir.path() / "model.safetensors");
      ASSERT_TRUE(file.ok()) << file.status();
      for (const auto& t : file->tensors()) EXPECT_EQ(t.dtype, DType::kBF16);
      EXPECT_EQ(file->tensors().back().end, leaves.total_bytes() / 2);
    } else {
      EXPECT_TRUE(fs::exists(dir.path() / "model.safetensors.index.json"));
    }
    auto loaded = LoadCheckpoint(dir.path());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    size_t changed = 0;
    for (size_t i = 0; i < leaves.size(); ++i) {
      const auto original = leaves.F32(i);
      const auto back = loaded->leaves.F32(i);
      for (size_t k = 0; k < original.size(); ++k) {
        // Truncating the mantissa to 7 bits, rounded to nearest.
        const float expected = Bf16ToF32(F32ToBf16(original[k]));
        ASSERT_EQ(back[k], expected) << leaves.spec(i).name << "[" << k << "]";
        EXPECT_LE(std::abs(back[k] - original[k]),
                  std::abs(original[k]) * (1.0f / 256));
        changed += back[k] != original[k];
      }
    }
    EXPECT_GT(changed, 0u);  // The values really went through BF16.
  }
}

TEST(CheckpointTest, ResavingRemovesWeightsOfTheOtherLayout) {
  TempDir dir;
  const ModelConfig config = SmallQwen3(/*tied=*/false);
  const ParamLeaves first = RandomLeaves(config, 1);
  const ParamLeaves second = RandomLeaves(config, 2);
  WriteBytes(dir.path() / "tokenizer.json", "{}");  // Not ours: kept.
  SaveCheckpointOptions sharded;
  sharded.max_shard_bytes = 10000;
  ASSERT_TRUE(SaveCheckpoint(first, config, dir.path(), sharded).ok());
  ASSERT_GT(FileNames(dir.path()).size(), 4u);
  ASSERT_TRUE(SaveCheckpoint(second, config, dir.path()).ok());
  EXPECT_EQ(FileNames(dir.path()),
            (std::set<std::string>{"config.json", "model.safetensors",
                                   "tokenizer.json"}));
  auto loaded = LoadCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(SameBytes(loaded->leaves, second));

  ASSERT_TRUE(SaveCheckpoint(first, config, dir.path(), sharded).ok());
  EXPECT_FALSE(fs::exists(dir.path() / "model.safetensors"));
  loaded = LoadCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(SameBytes(loaded->leaves, first));
}

TEST(CheckpointTest, Qwen2BiasesRoundTrip) {
  TempDir dir;
  const ModelConfig config = SmallQwen2();
  const ParamLeaves leaves = RandomLeaves(config, 5);
  ASSERT_TRUE(leaves.Find("model.layers.1.self_attn.v_proj.bias").has_value());
  ASSERT_TRUE(SaveCheckpoint(leaves, config, dir.path()).ok());
  auto loaded = LoadCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.model_type, ModelType::kQwen2);
  EXPECT_TRUE(SameBytes(loaded->leaves, leaves));
}

TEST(CheckpointTest, SaveRefusesMismatchedLeavesAndDtypes) {
  TempDir dir;
  const ParamLeaves leaves = RandomLeaves(SmallQwen3(false), 5);
  Status s = SaveCheckpoint(leaves, SmallQwen3(true), dir.path());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("lm_head.weight"), std::string::npos) << s;
  SaveCheckpointOptions f16;
  f16.dtype = DType::kF16;
  s = SaveCheckpoint(leaves, SmallQwen3(false), dir.path(), f16);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(FileNames(dir.path()).empty());
}

// stories260K as published, checked against values read straight from the
// file's bytes here (header length, JSON offsets, little-endian floats).
TEST(CheckpointTest, LoadsStories260K) {
  const fs::path dir = RLRT_SHARED_DIR "/models/stories260K";
  auto loaded = LoadCheckpoint(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const ParamLeaves& leaves = loaded->leaves;
  EXPECT_EQ(leaves.size(), 1 + 5 * 9 + 1u);
  EXPECT_FALSE(leaves.Find("lm_head.weight").has_value());
  EXPECT_EQ(leaves.total_elements(), 260'032);

  const std::string bytes = ReadBytes(dir / "model.safetensors");
  const uint64_t n = ReadU64(bytes, 0);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  struct Probe {
    const char* name;
    size_t row, col, cols;
  };
  for (const Probe& p :
       {Probe{"model.layers.3.mlp.down_proj.weight", 17, 150, 172},
        Probe{"model.embed_tokens.weight", 400, 63, 64},
        Probe{"model.norm.weight", 0, 5, 64},
        Probe{"model.layers.0.self_attn.k_proj.weight", 31, 0, 64}}) {
    const uint64_t begin = header[p.name]["data_offsets"][0];
    const size_t element = p.row * p.cols + p.col;
    const float expected = FloatAt(bytes, 8 + n + begin + 4 * element);
    auto leaf = leaves.Find(p.name);
    ASSERT_TRUE(leaf.has_value()) << p.name;
    EXPECT_EQ(leaves.F32(*leaf)[element], expected) << p.name;
    EXPECT_NE(expected, 0.0f) << p.name;
  }
  // The whole payload, summed independently of the loader.
  double file_sum = 0;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const uint64_t begin = entry["data_offsets"][0];
    const uint64_t end = entry["data_offsets"][1];
    for (uint64_t at = begin; at < end; at += 4) {
      file_sum += FloatAt(bytes, 8 + n + at);
    }
  }
  EXPECT_NEAR(ComputeChecksums(leaves).float64_sum, file_sum,
              1e-9 * std::abs(file_sum) + 1e-9);
}

TEST(CheckpointTest, ConvertsBf16AndF16Sources) {
  TempDir dir;
  const ModelConfig config = TinyLlama(/*tied=*/false);
  WriteBytes(dir.path() / "config.json", ModelConfigToJson(config));
  std::vector<RawTensor> tensors = GoodTensors(config);
  // BF16 1.5, -2, 0.15625 and F16 1.5, -2, 65504 (the F16 maximum).
  RawTensor* norm = FindRaw(tensors, "model.norm.weight");
  norm->dtype = "BF16";
  norm->bytes = std::string("\xc0\x3f\x00\xc0\x20\x3e\x80\x3f", 8);
  RawTensor* ln = FindRaw(tensors, "model.layers.0.input_layernorm.weight");
  ln->dtype = "F16";
  ln->bytes = std::string("\x00\x3e\x00\xc0\xff\x7b\x00\x00", 8);
  WriteBytes(dir.path() / "model.safetensors", BuildSafetensors(tensors));

  auto loaded = LoadCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const ParamLeaves& leaves = loaded->leaves;
  const auto norm_values = leaves.F32(*leaves.Find("model.norm.weight"));
  EXPECT_EQ(std::vector<float>(norm_values.begin(), norm_values.end()),
            (std::vector<float>{1.5f, -2.0f, 0.15625f, 1.0f}));
  const auto ln_values =
      leaves.F32(*leaves.Find("model.layers.0.input_layernorm.weight"));
  EXPECT_EQ(std::vector<float>(ln_values.begin(), ln_values.end()),
            (std::vector<float>{1.5f, -2.0f, 65504.0f, 0.0f}));
  const size_t up = *leaves.Find("model.layers.0.mlp.up_proj.weight");
  for (size_t k = 0; k < leaves.F32(up).size(); ++k) {
    EXPECT_EQ(leaves.F32(up)[k], GoodValue(up, k));
  }
}

TEST(CheckpointTest, IgnoresRotaryBuffersAndAcceptsEqualTiedHead) {
  TempDir dir;
  const ModelConfig config = TinyLlama(/*tied=*/true);
  WriteBytes(dir.path() / "config.json", ModelConfigToJson(config));
  std::vector<RawTensor> tensors = GoodTensors(config);
  tensors.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq",
                     "F32",
                     {1},
                     testing::FloatBytes({1.0f}),
                     std::nullopt});
  // The head stored as BF16: equal to the F32 embedding after conversion.
  RawTensor head = tensors[0];
  head.name = "lm_head.weight";
  head.dtype = "BF16";
  head.bytes.clear();
  for (size_t k = 0; k < 32; ++k) {
    const uint16_t bits = F32ToBf16(GoodValue(0, k));
    head.bytes.push_back(static_cast<char>(bits & 0xff));
    head.bytes.push_back(static_cast<char>(bits >> 8));
  }
  tensors.push_back(head);
  WriteBytes(dir.path() / "model.safetensors", BuildSafetensors(tensors));
  auto loaded = LoadCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->leaves.F32(0)[5], GoodValue(0, 5));
}

TEST(CheckpointTest, ReadsUnalignedData) {
  // A header of odd length puts every tensor at an odd address.
  TempDir dir;
  const ModelConfig config = TinyLlama(/*tied=*/true);
  WriteBytes(dir.path() / "config.json", ModelConfigToJson(config));
  const std::string padded = BuildSafetensors(GoodTensors(config));
  const uint64_t n = ReadU64(padded, 0);
  std::string header = padded.substr(8, n);
  while (header.back() == ' ') header.pop_back();
  header += ' ';
  if (header.size() % 2 == 0) header += ' ';
  WriteBytes(dir.path() / "model.safetensors",
             U64Bytes(header.size()) + header + padded.substr(8 + n));
  auto loaded = LoadCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  for (size_t i = 0; i < loaded->leaves.size(); ++i) {
    for (size_t k = 0; k < loaded->leaves.F32(i).size(); ++k) {
      ASSERT_EQ(loaded->leaves.F32(i)[k], GoodValue(i, k));
    }
  }
}

// The PyTorch-written fixtures of tests/reference load, and their BF16 copies
// hold exactly our round-to-nearest-even BF16 of the F32 weights: PyTorch's
// writer, its rounding and our reader agree.
TEST(CheckpointTest, LoadsPyTorchReferenceFixtures) {
  const fs::path root = RLRT_SOURCE_DIR "/tests/reference/fixtures";
  struct Fixture {
    const char* name;
    ModelType type;
    int64_t head_dim;
    bool tied;
  };
  for (const Fixture& f : {Fixture{"qwen3_tied", ModelType::kQwen3, 16, true},
                           Fixture{"qwen3_untied", ModelType::kQwen3, 8, false},
                           Fixture{"qwen2", ModelType::kQwen2, 8, false},
                           Fixture{"llama", ModelType::kLlama, 8, false}}) {
    auto f32 = LoadCheckpoint(root / f.name);
    ASSERT_TRUE(f32.ok()) << f.name << ": " << f32.status();
    EXPECT_EQ(f32->config.model_type, f.type) << f.name;
    EXPECT_EQ(f32->config.head_dim, f.head_dim) << f.name;
    EXPECT_EQ(f32->config.tie_word_embeddings, f.tied) << f.name;
    auto bf16 = LoadCheckpoint(root / f.name / "model_bf16");
    ASSERT_TRUE(bf16.ok()) << f.name << ": " << bf16.status();
    EXPECT_EQ(bf16->config.torch_dtype, "bfloat16");
    ASSERT_EQ(bf16->leaves.specs(), f32->leaves.specs());
    size_t rounded = 0;
    for (size_t i = 0; i < f32->leaves.size(); ++i) {
      const auto exact = f32->leaves.F32(i);
      const auto stored = bf16->leaves.F32(i);
      for (size_t k = 0; k < exact.size(); ++k) {
        ASSERT_EQ(stored[k], Bf16ToF32(F32ToBf16(exact[k])))
            << f.name << " " << f32->leaves.spec(i).name << "[" << k << "]";
        rounded += stored[k] != exact[k];
      }
    }
    EXPECT_GT(rounded, f32->leaves.total_elements() / 2) << f.name;
  }
}

TEST(CheckpointTest, LoadIntoRefusesLeavesOfAnotherStructure) {
  TempDir dir;
  const ModelConfig config = SmallQwen3(/*tied=*/true);
  ASSERT_TRUE(SaveCheckpoint(RandomLeaves(config, 3), config, dir.path()).ok());
  ParamLeaves other = RandomLeaves(SmallQwen3(/*tied=*/false), 4);
  const uint64_t before = ContentHash(other);
  Status s = LoadCheckpointInto(dir.path(), other);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("lm_head.weight"), std::string::npos) << s;
  EXPECT_EQ(ContentHash(other), before);
}

}  // namespace
}  // namespace rlrt
