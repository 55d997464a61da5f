#include "models/lora/peft_io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "models/io/checkpoint.h"
#include "models/io/safetensors.h"
#include "models/lora/lora_merge.h"

namespace rlrt {
namespace {

namespace fs = std::filesystem;

std::string Fixture(const std::string& path) {
  return std::string(RLRT_SOURCE_DIR) + "/tests/reference/fixtures/" + path;
}

ModelConfig BaseConfig(const std::string& name) {
  auto checkpoint = LoadCheckpoint(Fixture(name));
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
  return checkpoint->config;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("peft_io_test_" + std::to_string(::getpid()) + "_" +
             std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

// A copy of a fixture adapter that a test may spoil.
fs::path CopyAdapter(const std::string& fixture, const TempDir& dir) {
  for (const char* file : {kAdapterConfigFile, kAdapterWeightsFile}) {
    fs::copy_file(Fixture(fixture) + "/" + file, dir.path() / file);
  }
  return dir.path();
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

TEST(PeftIoTest, LoadsPeftAdaptersWithTheirTensors) {
  for (const std::string base : {"qwen3_tied", "llama"}) {
    const ModelConfig model = BaseConfig(base);
    for (const std::string name : {"lora_all7", "lora_qv_rs"}) {
      const std::string dir = base + "/" + name;
      auto adapter = LoadPeftAdapter(Fixture(dir), model);
      ASSERT_TRUE(adapter.ok()) << adapter.status();
      auto file =
          SafetensorsFile::Open(Fixture(dir) + "/" + kAdapterWeightsFile);
      ASSERT_TRUE(file.ok());
      const ParamLeaves& leaves = (*adapter)->leaves();
      ASSERT_EQ(leaves.size(), file->tensors().size()) << dir;
      for (size_t i = 0; i < leaves.size(); ++i) {
        const SafetensorsTensor* t = file->Find(leaves.spec(i).name);
        ASSERT_NE(t, nullptr) << leaves.spec(i).name;
        EXPECT_EQ(0,
                  std::memcmp(t->data.data(), leaves.data(i), leaves.bytes(i)))
            << leaves.spec(i).name;
      }
      const LoraConfig& c = (*adapter)->config();
      if (name == "lora_all7") {
        EXPECT_EQ(c.rank, 4);
        EXPECT_EQ((*adapter)->scale(), 2.0f);
        EXPECT_EQ(c.target_mask, kAllLoraModules);
      } else {
        EXPECT_EQ(c.rank, 2);
        EXPECT_EQ((*adapter)->scale(), static_cast<float>(3 / std::sqrt(2.0)));
        EXPECT_EQ(LoraTargetModulesString(c.target_mask), "q_proj,v_proj");
      }
    }
  }
}

TEST(PeftIoTest, SavedAdapterReadsBackAndKeepsPeftNames) {
  const ModelConfig model = BaseConfig("llama");
  LoraConfig config;
  config.rank = 3;
  config.alpha = 6;
  config.target_mask = *ParseLoraTargetModules("q_proj,down_proj");
  auto adapter = LoraAdapter::Create(model, config);
  ASSERT_TRUE(adapter.ok());
  ASSERT_TRUE((*adapter)->InitLikePeft(7).ok());
  // B random too, so the round trip checks every byte.
  for (size_t i = 0; i < (*adapter)->leaves().size(); ++i) {
    std::span<float> v = (*adapter)->leaves().F32(i);
    for (size_t j = 0; j < v.size(); ++j) v[j] = 0.001f * (i + 1) * (j % 17);
  }
  TempDir dir;
  ASSERT_TRUE(SavePeftAdapter(dir.path() / "out", **adapter).ok());
  auto back = LoadPeftAdapter(dir.path() / "out", model);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ((*back)->leaves().specs(), (*adapter)->leaves().specs());
  for (size_t i = 0; i < (*back)->leaves().size(); ++i) {
    EXPECT_EQ(
        0, std::memcmp((*back)->leaves().data(i), (*adapter)->leaves().data(i),
                       (*adapter)->leaves().bytes(i)));
  }
  const nlohmann::json written =
      nlohmann::json::parse(ReadText(dir.path() / "out" / kAdapterConfigFile));
  EXPECT_EQ(written["peft_type"], "LORA");
  EXPECT_EQ(written["r"], 3);
  EXPECT_EQ(written["lora_alpha"], 6);
  EXPECT_EQ(written["target_modules"],
            nlohmann::json::array({"q_proj", "down_proj"}));
  EXPECT_EQ((*adapter)->leaves().spec(0).name,
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ((*adapter)->leaves().spec(3).name,
            "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
}

TEST(PeftIoTest, PeftInitialisationLeavesTheBaseUnchanged) {
  const ModelConfig model = BaseConfig("qwen3_tied");
  auto adapter = LoraAdapter::Create(model, LoraConfig{});
  ASSERT_TRUE(adapter.ok());
  ASSERT_TRUE((*adapter)->InitLikePeft(3).ok());
  const ParamLeaves& leaves = (*adapter)->leaves();
  for (size_t i = 0; i < leaves.size(); ++i) {
    const std::span<const float> v = leaves.F32(i);
    const bool is_b = leaves.spec(i).name.ends_with("lora_B.weight");
    const double bound = 1.0 / std::sqrt(double(leaves.spec(i).shape[1]));
    double largest = 0;
    for (float x : v) largest = std::max(largest, std::fabs(double(x)));
    if (is_b) {
      EXPECT_EQ(largest, 0.0) << leaves.spec(i).name;
    } else {
      EXPECT_LE(largest, bound * (1 + 1e-6)) << leaves.spec(i).name;
      EXPECT_GT(largest, bound * 0.8) << leaves.spec(i).name;
    }
  }
}

TEST(PeftIoTest, MergeAddsScaledBTimesA) {
  auto checkpoint = LoadCheckpoint(Fixture("llama"));
  ASSERT_TRUE(checkpoint.ok());
  auto adapter =
      LoadPeftAdapter(Fixture("llama/lora_qv_rs"), checkpoint->config);
  ASSERT_TRUE(adapter.ok());
  auto before = LoadCheckpoint(Fixture("llama"));
  ASSERT_TRUE(
      MergeLoraInto(**adapter, checkpoint->config, checkpoint->leaves).ok());
  const LoraFactors f = (*adapter)->Factors(1, LayerParam::kVProj);
  const size_t leaf =
      *checkpoint->leaves.Find(LayerParamName(1, LayerParam::kVProj));
  const auto [out, in] =
      ProjectionShape(checkpoint->config, LayerParam::kVProj);
  for (int64_t o = 0; o < out; o += 5) {
    for (int64_t i = 0; i < in; i += 3) {
      double delta = 0;
      for (int64_t k = 0; k < f.rank; ++k) {
        delta += double(f.b[o * f.rank + k]) * f.a[k * in + i];
      }
      const double want =
          before->leaves.F32(leaf)[o * in + i] + f.scale * delta;
      EXPECT_NEAR(checkpoint->leaves.F32(leaf)[o * in + i], want, 1e-6);
    }
  }
  // k_proj is not adapted: untouched.
  const size_t k_leaf =
      *checkpoint->leaves.Find(LayerParamName(1, LayerParam::kKProj));
  EXPECT_EQ(0, std::memcmp(checkpoint->leaves.data(k_leaf),
                           before->leaves.data(k_leaf),
                           before->leaves.bytes(k_leaf)));
}

TEST(PeftIoTest, BadAdaptersGetClearErrors) {
  const ModelConfig llama = BaseConfig("llama");
  const ModelConfig qwen = BaseConfig("qwen3_tied");
  struct Case {
    std::string what;
    std::function<void(const fs::path&)> spoil;
    StatusCode code;
    std::string mentions;
  };
  const std::string weights = kAdapterWeightsFile;
  const std::string config = kAdapterConfigFile;
  const Case cases[] = {
      {"missing config", [&](const fs::path& d) { fs::remove(d / config); },
       StatusCode::kNotFound, config},
      {"missing weights", [&](const fs::path& d) { fs::remove(d / weights); },
       StatusCode::kNotFound, weights},
      {"truncated weights",
       [&](const fs::path& d) {
         fs::resize_file(d / weights, fs::file_size(d / weights) - 100);
       },
       StatusCode::kDataLoss, "truncated"},
      {"config with a module the weights lack",
       [&](const fs::path& d) {
         std::string text = ReadText(d / config);
         text.replace(text.find("\"v_proj\""), 8, "\"v_proj\", \"o_proj\"");
         WriteText(d / config, text);
       },
       StatusCode::kInvalidArgument, "o_proj.lora_A"},
      {"config naming fewer modules than the weights hold",
       [&](const fs::path& d) {
         std::string text = ReadText(d / config);
         text.replace(text.find("\"q_proj\",\n"), 10, "");
         WriteText(d / config, text);
       },
       StatusCode::kInvalidArgument, "q_proj"},
      {"rank other than the tensors'",
       [&](const fs::path& d) {
         std::string text = ReadText(d / config);
         text.replace(text.find("\"r\": 2"), 6, "\"r\": 3");
         WriteText(d / config, text);
       },
       StatusCode::kInvalidArgument, "[2, 32]"},
      {"unknown target module",
       [&](const fs::path& d) {
         std::string text = ReadText(d / config);
         text.replace(text.find("\"v_proj\""), 8, "\"qkv_proj\"");
         WriteText(d / config, text);
       },
       StatusCode::kInvalidArgument, "qkv_proj"},
      {"config not JSON",
       [&](const fs::path& d) { WriteText(d / config, "{\"r\": 2,"); },
       StatusCode::kInvalidArgument, "JSON"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    const fs::path d = CopyAdapter("llama/lora_qv_rs", dir);
    c.spoil(d);
    auto adapter = LoadPeftAdapter(d, llama);
    ASSERT_FALSE(adapter.ok()) << c.what;
    EXPECT_EQ(adapter.status().code(), c.code)
        << c.what << ": " << adapter.status();
    EXPECT_NE(adapter.status().message().find(c.mentions), std::string::npos)
        << c.what << ": " << adapter.status();
  }
  // An adapter for one base refused by another of other shapes
  // (qwen3_tied: head_dim 16, kv heads 2).
  auto wrong_base = LoadPeftAdapter(Fixture("llama/lora_all7"), qwen);
  ASSERT_FALSE(wrong_base.ok());
  EXPECT_NE(wrong_base.status().message().find("this base needs"),
            std::string::npos)
      << wrong_base.status();
  // Rank over the limit.
  auto over = LoadPeftAdapter(Fixture("llama/lora_all7"), llama, 2);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("exceeds the limit"),
            std::string::npos)
      << over.status();
  // An extra tensor: a layer the base does not have.
  {
    TempDir dir;
    const fs::path d = CopyAdapter("llama/lora_qv_rs", dir);
    auto file = SafetensorsFile::Open(d / weights);
    ASSERT_TRUE(file.ok());
    std::vector<SafetensorsTensorData> tensors;
    for (const SafetensorsTensor& t : file->tensors())
      tensors.push_back({t.name, t.dtype, t.shape, t.data});
    const SafetensorsTensor& first = file->tensors().front();
    std::string extra = first.name;
    extra.replace(extra.find("layers.0"), 8, "layers.7");
    tensors.push_back({extra, first.dtype, first.shape, first.data});
    const fs::path rewritten = dir.path() / "rewritten.safetensors";
    ASSERT_TRUE(WriteSafetensors(rewritten, tensors, {}).ok());
    fs::rename(rewritten, d / weights);
    auto adapter = LoadPeftAdapter(d, llama);
    ASSERT_FALSE(adapter.ok());
    EXPECT_NE(adapter.status().message().find("layers.7"), std::string::npos)
        << adapter.status();
  }
  EXPECT_EQ(LoadPeftAdapter("/nonexistent/adapter", llama).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace rlrt
