#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/config/model_config.h"

namespace rlrt {
namespace {

using Json = nlohmann::json;

// The public Qwen/Qwen3-0.6B config.json.
constexpr char kQwen3Config[] = R"({
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "max_position_embeddings": 40960,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 16,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000,
  "sliding_window": null,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// Shaped like Qwen2.5-0.5B's: no head_dim (896 / 14 = 64), sliding window
// configured but switched off.
constexpr char kQwen2Config[] = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151643,
  "hidden_act": "silu",
  "hidden_size": 896,
  "initializer_range": 0.02,
  "intermediate_size": 4864,
  "max_position_embeddings": 32768,
  "max_window_layers": 24,
  "model_type": "qwen2",
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

void ExpectSameConfig(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.model_type, b.model_type);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);  // Exact: doubles round-trip.
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.qk_norm, b.qk_norm);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.torch_dtype, b.torch_dtype);
}

TEST(ConfigJsonTest, ParsesRealQwen3Config) {
  auto c = ParseModelConfig(kQwen3Config);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, ModelType::kQwen3);
  EXPECT_EQ(c->vocab_size, 151936);
  EXPECT_EQ(c->hidden_size, 1024);
  EXPECT_EQ(c->intermediate_size, 3072);
  EXPECT_EQ(c->num_hidden_layers, 28);
  EXPECT_EQ(c->num_attention_heads, 16);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 128);  // Not 1024 / 16 = 64.
  EXPECT_EQ(c->q_dim(), 2048);
  EXPECT_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_EQ(c->rope_theta, 1e6);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->max_position_embeddings, 40960);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_EQ(c->bos_token_id, 151643);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{151645}));
  EXPECT_EQ(c->torch_dtype, "bfloat16");
  // The same shape as the built-in preset.
  auto preset = PresetConfig("qwen3-0.6b");
  ASSERT_TRUE(preset.ok());
  ExpectSameConfig(*c, *preset);
}

TEST(ConfigJsonTest, ParsesQwen2ConfigWithDerivedHeadDimAndFixedBias) {
  auto c = ParseModelConfig(kQwen2Config);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, ModelType::kQwen2);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_TRUE(c->attention_bias);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{151643}));
  // Qwen2Attention always has q/k/v biases; an attention_bias key is not
  // read, exactly as transformers does not read it.
  Json j = Json::parse(kQwen2Config);
  j["attention_bias"] = false;
  auto same = ParseModelConfig(j.dump());
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE(same->attention_bias);
}

TEST(ConfigJsonTest, ParsesStories260KConfig) {
  auto c = LoadModelConfig(RLRT_SHARED_DIR "/models/stories260K");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, ModelType::kLlama);
  EXPECT_EQ(c->vocab_size, 512);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 172);
  EXPECT_EQ(c->num_hidden_layers, 5);
  EXPECT_EQ(c->num_attention_heads, 8);
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 8);
  EXPECT_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_EQ(c->rope_theta, 10000.0);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->max_position_embeddings, 512);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{2}));
  EXPECT_EQ(c->torch_dtype, "float32");
  // 512*64 + 5*(64*64 + 2*32*64 + 64*64 + 3*64*172 + 2*64) + 64, which is
  // also the F32 data size of its model.safetensors (1,040,128 bytes) / 4.
  EXPECT_EQ(c->NumParams(), 260'032);
}

TEST(ConfigJsonTest, LoadModelConfigNamesMissingFile) {
  auto c = LoadModelConfig("/nonexistent/model/dir");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("/nonexistent/model/dir"),
            std::string::npos);
}

TEST(ConfigJsonTest, LlamaDefaultsFollowTransformers) {
  // Only the shapes: everything else takes LlamaConfig's defaults.
  auto c = ParseModelConfig(R"({"model_type": "llama", "vocab_size": 32000,
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
      "num_attention_heads": 4})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->max_position_embeddings, 2048);
  EXPECT_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_EQ(c->rope_theta, 10000.0);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{2}));
  EXPECT_EQ(c->torch_dtype, "float32");
}

TEST(ConfigJsonTest, QwenDefaultsFollowTransformers) {
  Json j = Json::parse(kQwen2Config);
  for (const char* key :
       {"bos_token_id", "eos_token_id", "max_position_embeddings",
        "rms_norm_eps", "rope_theta", "tie_word_embeddings", "torch_dtype"}) {
    j.erase(key);
  }
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->bos_token_id, -1);
  EXPECT_TRUE(c->eos_token_ids.empty());
  EXPECT_EQ(c->max_position_embeddings, 32768);
  EXPECT_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_EQ(c->rope_theta, 10000.0);
  EXPECT_FALSE(c->tie_word_embeddings);
}

TEST(ConfigJsonTest, NullsMeanDerivedValues) {
  Json j = Json::parse(kQwen2Config);
  j["num_key_value_heads"] = nullptr;
  j["head_dim"] = nullptr;
  j["bos_token_id"] = nullptr;
  j["eos_token_id"] = nullptr;
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_key_value_heads, 14);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->bos_token_id, -1);
  EXPECT_TRUE(c->eos_token_ids.empty());
}

TEST(ConfigJsonTest, EosMayBeAList) {
  Json j = Json::parse(kQwen3Config);
  j["eos_token_id"] = {151645, 151643};
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{151645, 151643}));
}

TEST(ConfigJsonTest, PlainRopeDictsAreAccepted) {
  // transformers v5 moves rope_theta into rope_parameters.
  Json j = Json::parse(kQwen3Config);
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 5e6}};
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope_theta, 5e6);
  j["rope_scaling"] = {{"type", "default"}};
  c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope_theta, 5e6);
}

struct Refusal {
  const char* what;
  const char* key;
  Json value;  // Ignored when erase is set.
  StatusCode code;
  const char* message_part;
  bool erase = false;
};

TEST(ConfigJsonTest, RefusesWhatItCannotRunOrRead) {
  const std::vector<Refusal> refusals = {
      {"rope scaling", "rope_scaling",
       Json{{"rope_type", "yarn"}, {"factor", 4.0}}, StatusCode::kUnimplemented,
       "rope_scaling"},
      {"linear rope", "rope_scaling", Json{{"type", "linear"}},
       StatusCode::kUnimplemented, "rope_scaling"},
      {"rope parameters llama3", "rope_parameters",
       Json{{"rope_type", "llama3"}, {"rope_theta", 5e5}},
       StatusCode::kUnimplemented, "rope_parameters"},
      {"sliding window", "use_sliding_window", true, StatusCode::kUnimplemented,
       "use_sliding_window"},
      {"sliding layer types", "layer_types",
       Json{"full_attention", "sliding_attention"}, StatusCode::kUnimplemented,
       "sliding_attention"},
      {"gelu", "hidden_act", "gelu", StatusCode::kUnimplemented, "gelu"},
      {"mlp bias", "mlp_bias", true, StatusCode::kUnimplemented, "mlp_bias"},
      {"attention bias on qwen3", "attention_bias", true,
       StatusCode::kUnimplemented, "attention_bias"},
      {"partial rotary", "partial_rotary_factor", 0.5,
       StatusCode::kUnimplemented, "partial_rotary_factor"},
      {"unknown model type", "model_type", "mistral",
       StatusCode::kUnimplemented, "mistral"},
      {"classification head", "architectures",
       Json{"Qwen3ForSequenceClassification"}, StatusCode::kUnimplemented,
       "architectures"},
      {"missing vocab", "vocab_size", nullptr, StatusCode::kInvalidArgument,
       "vocab_size", true},
      {"missing hidden", "hidden_size", nullptr, StatusCode::kInvalidArgument,
       "hidden_size", true},
      {"missing layers", "num_hidden_layers", nullptr,
       StatusCode::kInvalidArgument, "num_hidden_layers", true},
      {"missing model type", "model_type", nullptr,
       StatusCode::kInvalidArgument, "model_type", true},
      {"qwen3 missing head_dim", "head_dim", nullptr,
       StatusCode::kInvalidArgument, "head_dim", true},
      {"qwen3 missing kv heads", "num_key_value_heads", nullptr,
       StatusCode::kInvalidArgument, "num_key_value_heads", true},
      {"string size", "hidden_size", "1024", StatusCode::kInvalidArgument,
       "hidden_size must be an integer"},
      {"float size", "intermediate_size", 3072.0, StatusCode::kInvalidArgument,
       "intermediate_size must be an integer"},
      {"bool as int", "num_hidden_layers", true, StatusCode::kInvalidArgument,
       "num_hidden_layers"},
      {"string bool", "tie_word_embeddings", "true",
       StatusCode::kInvalidArgument, "tie_word_embeddings"},
      {"string eps", "rms_norm_eps", "1e-6", StatusCode::kInvalidArgument,
       "rms_norm_eps"},
      {"object eos", "eos_token_id", Json{{"id", 1}},
       StatusCode::kInvalidArgument, "eos_token_id"},
      {"string in eos list", "eos_token_id", Json{1, "2"},
       StatusCode::kInvalidArgument, "eos_token_id"},
      {"negative size", "hidden_size", -1024, StatusCode::kInvalidArgument,
       "hidden_size"},
      {"zero heads", "num_attention_heads", 0, StatusCode::kInvalidArgument,
       "num_attention_heads"},
      {"zero layers", "num_hidden_layers", 0, StatusCode::kInvalidArgument,
       "num_hidden_layers"},
      {"indivisible heads", "num_key_value_heads", 3,
       StatusCode::kInvalidArgument, "not a multiple"},
      {"huge integer", "vocab_size", Json(uint64_t{1} << 63),
       StatusCode::kInvalidArgument, "out of range"},
      {"eos outside vocab", "eos_token_id", 151936,
       StatusCode::kInvalidArgument, "eos_token_id"},
      {"negative bos", "bos_token_id", -1, StatusCode::kInvalidArgument,
       "bos_token_id"},
      {"unknown dtype", "torch_dtype", "int4", StatusCode::kInvalidArgument,
       "torch_dtype"},
  };
  for (const Refusal& r : refusals) {
    Json j = Json::parse(kQwen3Config);
    if (r.erase) {
      j.erase(r.key);
    } else {
      j[r.key] = r.value;
    }
    auto c = ParseModelConfig(j.dump());
    ASSERT_FALSE(c.ok()) << r.what;
    EXPECT_EQ(c.status().code(), r.code) << r.what << ": " << c.status();
    EXPECT_NE(c.status().message().find(r.message_part), std::string::npos)
        << r.what << ": " << c.status();
  }
}

TEST(ConfigJsonTest, LlamaAttentionBiasIsRefused) {
  auto c = ParseModelConfig(R"({"model_type": "llama", "vocab_size": 64,
      "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
      "num_attention_heads": 2, "attention_bias": true})");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("o_proj"), std::string::npos);
}

TEST(ConfigJsonTest, HeadDimMustBeDerivableWhenAbsent) {
  auto c = ParseModelConfig(R"({"model_type": "llama", "vocab_size": 64,
      "hidden_size": 30, "intermediate_size": 32, "num_hidden_layers": 1,
      "num_attention_heads": 4})");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("head_dim"), std::string::npos)
      << c.status();
}

TEST(ConfigJsonTest, RefusesMalformedJson) {
  for (const char* text :
       {"", "{", "{\"model_type\": \"qwen3\",}", "[1, 2]", "null", "42",
        "{\"model_type\": \"qwen3\"} trailing", "\xff\xfe{}"}) {
    auto c = ParseModelConfig(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(c.status().message().find("config.json"), std::string::npos)
        << c.status();
  }
}

TEST(ConfigJsonTest, ContradictoryRopeThetaIsRefused) {
  Json j = Json::parse(kQwen3Config);
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}};
  auto c = ParseModelConfig(j.dump());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("contradicts"), std::string::npos)
      << c.status();
}

TEST(ConfigJsonTest, WrittenJsonIsWhatTransformersExpects) {
  auto c = PresetConfig("qwen3-tiny");
  ASSERT_TRUE(c.ok());
  const Json j = Json::parse(ModelConfigToJson(*c));
  EXPECT_EQ(j["architectures"], Json({"Qwen3ForCausalLM"}));
  EXPECT_EQ(j["model_type"], "qwen3");
  EXPECT_EQ(j["head_dim"], 16);
  EXPECT_EQ(j["num_key_value_heads"], 2);
  EXPECT_TRUE(j["rope_scaling"].is_null());
  EXPECT_EQ(j["rope_theta"], 1e6);
  EXPECT_EQ(j["hidden_act"], "silu");
  EXPECT_EQ(j["attention_bias"], false);
  EXPECT_EQ(j["use_sliding_window"], false);
  EXPECT_EQ(j["tie_word_embeddings"], true);
  EXPECT_EQ(j["torch_dtype"], "float32");
  EXPECT_TRUE(j["bos_token_id"].is_null());
  EXPECT_EQ(j["eos_token_id"], Json({151645, 151643}));

  ModelConfig qwen2 = *ParseModelConfig(kQwen2Config);
  const Json j2 = Json::parse(ModelConfigToJson(qwen2));
  EXPECT_EQ(j2["architectures"], Json({"Qwen2ForCausalLM"}));
  EXPECT_FALSE(j2.contains("attention_bias"));
  EXPECT_EQ(j2["head_dim"], 64);
  EXPECT_EQ(j2["eos_token_id"], 151643);
}

TEST(ConfigJsonTest, RoundTrips) {
  std::vector<ModelConfig> configs;
  for (const std::string& name : PresetNames()) {
    configs.push_back(*PresetConfig(name));
  }
  configs.push_back(*ParseModelConfig(kQwen2Config));
  configs.push_back(*LoadModelConfig(RLRT_SHARED_DIR "/models/stories260K"));
  ModelConfig odd = *ParseModelConfig(kQwen2Config);
  odd.rms_norm_eps = 1.0 / 3.0 * 1e-5;  // Needs all 17 digits.
  odd.rope_theta = 123456.789;
  odd.eos_token_ids = {};
  odd.bos_token_id = 0;
  odd.tie_word_embeddings = false;
  odd.torch_dtype = "float16";
  configs.push_back(odd);
  for (const ModelConfig& c : configs) {
    ASSERT_TRUE(ValidateModelConfig(c).ok());
    const std::string text = ModelConfigToJson(c);
    auto back = ParseModelConfig(text);
    ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
    ExpectSameConfig(*back, c);
    EXPECT_EQ(ModelConfigToJson(*back), text);
  }
}

}  // namespace
TEST(ConfigJsonTest, ADeeplyNestedConfigIsRefusedBeforeParsing) {
  const std::string deep = R"({"model_type": "qwen3", "x": )" +
                           std::string(100000, '[') + std::string(100000, ']') +
                           "}";
  auto config = ParseModelConfig(deep);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("config.json: JSON nested deeper"),
            std::string::npos)
      << config.status();
}

}  // namespace rlrt
