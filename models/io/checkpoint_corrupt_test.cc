// Broken checkpoints, written byte by byte: each load must fail with an
// error that names the problem (and the file and tensor where there is
// one), and must leave a pre-filled leaf list exactly as it was.
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "models/io/checkpoint.h"
#include "models/io/io_test_util.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::AllocateOrDie;
using testing::BuildSafetensors;
using testing::FindRaw;
using testing::FloatBytes;
using testing::GoodTensors;
using testing::MakeMesh;
using testing::RawTensor;
using testing::ReadU64;
using testing::TempDir;
using testing::TinyLlama;
using testing::U64Bytes;
using testing::WriteBytes;

namespace fs = std::filesystem;

constexpr char kUp[] = "model.layers.0.mlp.up_proj.weight";

class CorruptCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteBytes(dir_.path() / "config.json", ModelConfigToJson(config_));
  }

  // Loads into leaves filled with dummy values, on a mesh, and checks that
  // the load fails with `code` and a message holding every part, and that
  // the leaves kept their contents.
  void ExpectRefused(StatusCode code, const std::vector<std::string>& parts) {
    ParamLeaves leaves = AllocateOrDie(LeafSpecsFor(config_));
    ASSERT_TRUE(FillDummy(leaves, 99).ok());
    const uint64_t before = ContentHash(leaves);
    auto mesh = MakeMesh(2);
    Status s = LoadCheckpointInto(dir_.path(), leaves, mesh.get());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), code) << s;
    for (const std::string& part : parts) {
      EXPECT_NE(s.message().find(part), std::string::npos)
          << "'" << part << "' not in: " << s;
    }
    EXPECT_EQ(ContentHash(leaves), before);
    // LoadCheckpoint reports the same error.
    auto loaded = LoadCheckpoint(dir_.path());
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.status(), s);
  }

  fs::path Single() const { return dir_.path() / "model.safetensors"; }
  void WriteSingle(const std::vector<RawTensor>& tensors) {
    WriteBytes(Single(), BuildSafetensors(tensors));
  }

  const ModelConfig config_ = TinyLlama(/*tied=*/true);
  TempDir dir_;
};

TEST_F(CorruptCheckpointTest, GoodCheckpointLoads) {
  // The control for every case below: unbroken, the same files load.
  WriteSingle(GoodTensors(config_));
  auto loaded = LoadCheckpoint(dir_.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->leaves.F32(3)[2], testing::GoodValue(3, 2));
}

TEST_F(CorruptCheckpointTest, MissingTensor) {
  std::vector<RawTensor> tensors = GoodTensors(config_);
  std::erase_if(tensors, [](const RawTensor& t) { return t.name == kUp; });
  WriteSingle(tensors);
  ExpectRefused(StatusCode::kNotFound,
                {Single().string(), "missing tensor", kUp, "[6, 4]"});
}

TEST_F(CorruptCheckpointTest, ExtraTensor) {
  std::vector<RawTensor> tensors = GoodTensors(config_);
  tensors.push_back({"model.layers.0.self_attn.o_proj.bias",
                     "F32",
                     {4},
                     FloatBytes({1, 2, 3, 4}),
                     std::nullopt});
  WriteSingle(tensors);
  ExpectRefused(StatusCode::kInvalidArgument,
                {Single().string(), "unexpected tensor",
                 "model.layers.0.self_attn.o_proj.bias"});
}

TEST_F(CorruptCheckpointTest, WrongShape) {
  std::vector<RawTensor> tensors = GoodTensors(config_);
  FindRaw(tensors, kUp)->shape = {4, 6};  // Same bytes, transposed.
  WriteSingle(tensors);
  ExpectRefused(StatusCode::kInvalidArgument,
                {Single().string(), kUp, "shape [4, 6], expected [6, 4]"});
}

TEST_F(CorruptCheckpointTest, UnknownDtype) {
  std::vector<RawTensor> tensors = GoodTensors(config_);
  FindRaw(tensors, kUp)->dtype = "I32";
  WriteSingle(tensors);
  ExpectRefused(StatusCode::kInvalidArgument,
                {Single().string(), kUp, "unsupported dtype 'I32'"});
}

TEST_F(CorruptCheckpointTest, HeaderLengthPastEndOfFile) {
  std::string bytes = BuildSafetensors(GoodTensors(config_));
  const uint64_t size = bytes.size();
  bytes.replace(0, 8, U64Bytes(size));  // Header as long as the whole file.
  WriteBytes(Single(), bytes);
  ExpectRefused(StatusCode::kDataLoss,
                {Single().string(), "header length " + std::to_string(size),
                 "runs past the end of the file"});
}

TEST_F(CorruptCheckpointTest, OffsetsOutsideData) {
  std::vector<RawTensor> tensors = GoodTensors(config_);
  // The right size, but starting where the data section ends.
  size_t data_size = 0;
  for (const RawTensor& t : tensors) data_size += t.bytes.size();
  RawTensor* up = FindRaw(tensors, kUp);
  up->offsets = std::pair(data_size, data_size + up->bytes.size());
  WriteSingle(tensors);
  ExpectRefused(StatusCode::kDataLoss,
                {Single().string(), kUp, "past the end of the data section"});
}

TEST_F(CorruptCheckpointTest, OverlappingOffsets) {
  std::vector<RawTensor> tensors = GoodTensors(config_);
  // gate_proj and up_proj have the same size: point up_proj at gate_proj's
  // bytes shifted by one float.
  size_t at = 0;
  for (const RawTensor& t : tensors) {
    if (t.name == "model.layers.0.mlp.gate_proj.weight") break;
    at += t.bytes.size();
  }
  RawTensor* up = FindRaw(tensors, kUp);
  up->offsets = std::pair(at + 4, at + 4 + up->bytes.size());
  WriteSingle(tensors);
  ExpectRefused(StatusCode::kDataLoss,
                {Single().string(), "model.layers.0.mlp.gate_proj.weight", kUp,
                 "overlap"});
}

TEST_F(CorruptCheckpointTest, TruncatedFile) {
  const std::string bytes = BuildSafetensors(GoodTensors(config_));
  WriteBytes(Single(), bytes.substr(0, bytes.size() - 10));
  // The last tensor in the file is model.norm.weight.
  ExpectRefused(StatusCode::kDataLoss,
                {Single().string(), "model.norm.weight", "truncated"});
}

TEST_F(CorruptCheckpointTest, TruncatedInsideHeader) {
  const std::string bytes = BuildSafetensors(GoodTensors(config_));
  WriteBytes(Single(), bytes.substr(0, 40));
  ExpectRefused(StatusCode::kDataLoss,
                {Single().string(), "runs past the end of the file"});
}

TEST_F(CorruptCheckpointTest, MalformedHeaderJson) {
  const std::string good = BuildSafetensors(GoodTensors(config_));
  const uint64_t n = ReadU64(good, 0);
  std::string header = good.substr(8, n);
  header[header.find(':')] = ';';
  WriteBytes(Single(), U64Bytes(n) + header + good.substr(8 + n));
  ExpectRefused(StatusCode::kDataLoss,
                {Single().string(), "header is not valid JSON"});
}

TEST_F(CorruptCheckpointTest, MalformedIndexJson) {
  WriteBytes(dir_.path() / "model.safetensors.index.json",
             R"({"metadata": {"total_size": 8}, "weight_map": {"a": )");
  ExpectRefused(StatusCode::kDataLoss,
                {"model.safetensors.index.json", "not valid JSON"});
}

TEST_F(CorruptCheckpointTest, IndexWithoutWeightMap) {
  WriteBytes(dir_.path() / "model.safetensors.index.json",
             R"({"metadata": {"total_size": 8}})");
  ExpectRefused(StatusCode::kDataLoss,
                {"model.safetensors.index.json", "weight_map"});
}

// Splits the good tensors over two shards and writes the index for them.
void WriteShards(const fs::path& dir, const std::vector<RawTensor>& tensors,
                 const std::string& index_override = "") {
  const size_t half = tensors.size() / 2;
  const std::vector<RawTensor> first(tensors.begin(), tensors.begin() + half);
  const std::vector<RawTensor> second(tensors.begin() + half, tensors.end());
  WriteBytes(dir / "model-00001-of-00002.safetensors", BuildSafetensors(first));
  WriteBytes(dir / "model-00002-of-00002.safetensors",
             BuildSafetensors(second));
  nlohmann::json map;
  for (size_t i = 0; i < tensors.size(); ++i) {
    map[tensors[i].name] = i < half ? "model-00001-of-00002.safetensors"
                                    : "model-00002-of-00002.safetensors";
  }
  const nlohmann::json index = {{"metadata", {{"total_size", 0}}},
                                {"weight_map", map}};
  WriteBytes(dir / "model.safetensors.index.json",
             index_override.empty() ? index.dump() : index_override);
}

TEST_F(CorruptCheckpointTest, ShardedControlLoads) {
  WriteShards(dir_.path(), GoodTensors(config_));
  auto loaded = LoadCheckpoint(dir_.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
}

TEST_F(CorruptCheckpointTest, IndexPointsAtMissingShard) {
  WriteShards(dir_.path(), GoodTensors(config_));
  fs::remove(dir_.path() / "model-00002-of-00002.safetensors");
  ExpectRefused(StatusCode::kNotFound,
                {"model-00002-of-00002.safetensors", "no such file",
                 "model.safetensors.index.json"});
}

TEST_F(CorruptCheckpointTest, IndexListsTensorTheShardLacks) {
  std::vector<RawTensor> tensors = GoodTensors(config_);
  WriteShards(dir_.path(), tensors);
  // Rewrite shard 2 without its last tensor; the index still lists it.
  const size_t half = tensors.size() / 2;
  const std::vector<RawTensor> second(tensors.begin() + half,
                                      tensors.end() - 1);
  WriteBytes(dir_.path() / "model-00002-of-00002.safetensors",
             BuildSafetensors(second));
  ExpectRefused(StatusCode::kDataLoss,
                {"model.safetensors.index.json", tensors.back().name,
                 "does not contain it"});
}

TEST_F(CorruptCheckpointTest, ShardTensorMissingFromIndex) {
  std::vector<RawTensor> tensors = GoodTensors(config_);
  WriteShards(dir_.path(), tensors);
  nlohmann::json index = nlohmann::json::parse(
      testing::ReadBytes(dir_.path() / "model.safetensors.index.json"));
  index["weight_map"].erase(kUp);
  WriteBytes(dir_.path() / "model.safetensors.index.json", index.dump());
  ExpectRefused(StatusCode::kDataLoss, {kUp, "not listed in"});
}

TEST_F(CorruptCheckpointTest, IndexMayNotEscapeTheDirectory) {
  WriteShards(
      dir_.path(), GoodTensors(config_),
      R"({"weight_map": {"model.norm.weight": "../model.safetensors"}})");
  ExpectRefused(StatusCode::kDataLoss,
                {"model.norm.weight", "not a file name beside the index"});
}

TEST_F(CorruptCheckpointTest, TensorInTwoShards) {
  std::vector<RawTensor> tensors = GoodTensors(config_);
  WriteShards(dir_.path(), tensors);
  // Shard 1 also carries a copy of shard 2's first tensor; the index can
  // only name one home for it.
  const size_t half = tensors.size() / 2;
  std::vector<RawTensor> first(tensors.begin(), tensors.begin() + half + 1);
  WriteBytes(dir_.path() / "model-00001-of-00002.safetensors",
             BuildSafetensors(first));
  ExpectRefused(StatusCode::kDataLoss,
                {"model-00001-of-00002.safetensors", tensors[half].name,
                 "listed under model-00002-of-00002.safetensors"});
}

TEST_F(CorruptCheckpointTest, TiedHeadThatDiffers) {
  std::vector<RawTensor> tensors = GoodTensors(config_);
  RawTensor head = tensors[0];
  head.name = "lm_head.weight";
  head.bytes[5] ^= 0x01;  // One bit of one element.
  tensors.push_back(head);
  WriteSingle(tensors);
  ExpectRefused(StatusCode::kInvalidArgument,
                {Single().string(), "lm_head.weight",
                 "tie_word_embeddings is true", "differs"});
}

TEST_F(CorruptCheckpointTest, TiedHeadOfAnotherShape) {
  std::vector<RawTensor> tensors = GoodTensors(config_);
  tensors.push_back(
      {"lm_head.weight", "F32", {4}, FloatBytes({1, 2, 3, 4}), std::nullopt});
  WriteSingle(tensors);
  ExpectRefused(StatusCode::kInvalidArgument, {"lm_head.weight", "shape [4]"});
}

// Random damage (truncation, flipped header bytes, a random header length):
// a load may succeed (a flip inside a number can still leave a consistent
// file) but must never crash, and a failed one changes nothing.
TEST_F(CorruptCheckpointTest, RandomDamageNeverCrashes) {
  const std::string good = BuildSafetensors(GoodTensors(config_));
  const uint64_t header_end = 8 + ReadU64(good, 0);
  std::mt19937_64 rng(20240611);
  ParamLeaves leaves = AllocateOrDie(LeafSpecsFor(config_));
  ASSERT_TRUE(FillDummy(leaves, 5).ok());
  int refused = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = good;
    switch (trial % 3) {
      case 0:
        bytes.resize(rng() % bytes.size());
        break;
      case 1:
        for (int k = 0; k < 3; ++k) {
          bytes[rng() % header_end] = static_cast<char>(rng());
        }
        break;
      case 2:
        bytes.replace(0, 8, U64Bytes(rng() % (2 * bytes.size())));
        break;
    }
    WriteBytes(Single(), bytes);
    const uint64_t before = ContentHash(leaves);
    Status s = LoadCheckpointInto(dir_.path(), leaves);
    if (!s.ok()) {
      ++refused;
      EXPECT_FALSE(s.message().empty());
      ASSERT_EQ(ContentHash(leaves), before) << "trial " << trial << ": " << s;
    }
  }
  EXPECT_GT(refused, 250);
}

TEST_F(CorruptCheckpointTest, NoWeightsAtAll) {
  ExpectRefused(StatusCode::kNotFound,
                {"no model.safetensors or model.safetensors.index.json"});
}

TEST_F(CorruptCheckpointTest, BrokenConfig) {
  WriteSingle(GoodTensors(config_));
  WriteBytes(dir_.path() / "config.json", R"({"model_type": "llama"})");
  ExpectRefused(StatusCode::kInvalidArgument,
                {"config.json", "missing required field 'vocab_size'"});
}

}  // namespace
}  // namespace rlrt
