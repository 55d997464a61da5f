#include "models/config/model_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/config/testing/tiny_config.h"

namespace rlrt {
namespace {

ModelConfig TinyQwen2() {
  return testing::TinyConfig(ModelType::kQwen2, {.vocab_size = 100,
                                                 .hidden_size = 16,
                                                 .intermediate_size = 24,
                                                 .num_hidden_layers = 2,
                                                 .num_attention_heads = 4,
                                                 .num_key_value_heads = 2,
                                                 .head_dim = 4,
                                                 .max_position_embeddings = 64,
                                                 .eos_token_id = 7});
}

std::vector<std::string> Names(const std::vector<LeafSpec>& specs) {
  std::vector<std::string> names;
  for (const LeafSpec& s : specs) names.push_back(s.name);
  return names;
}

TEST(ModelConfigTest, ModelTypeNames) {
  EXPECT_EQ(ModelTypeName(ModelType::kQwen3), "qwen3");
  EXPECT_EQ(ModelTypeName(ModelType::kQwen2), "qwen2");
  EXPECT_EQ(ModelTypeName(ModelType::kLlama), "llama");
}

TEST(ModelConfigTest, PresetNamesAllResolveAndValidate) {
  const std::vector<std::string> names = PresetNames();
  EXPECT_EQ(names, (std::vector<std::string>{"qwen3-tiny", "qwen3-0.6b",
                                             "qwen3-1.7b", "qwen3-4b"}));
  for (const std::string& name : names) {
    auto c = PresetConfig(name);
    ASSERT_TRUE(c.ok()) << name << ": " << c.status();
    EXPECT_TRUE(ValidateModelConfig(*c).ok()) << name;
    EXPECT_EQ(c->model_type, ModelType::kQwen3);
    EXPECT_EQ(c->vocab_size, 151936);
    EXPECT_TRUE(c->qk_norm);
    EXPECT_FALSE(c->attention_bias);
    EXPECT_TRUE(c->tie_word_embeddings);
  }
}

TEST(ModelConfigTest, UnknownPresetListsKnownOnes) {
  auto c = PresetConfig("qwen3-7b");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("qwen3-7b"), std::string::npos);
  EXPECT_NE(c.status().message().find("qwen3-tiny"), std::string::npos);
}

TEST(ModelConfigTest, TinyPresetShape) {
  auto c = PresetConfig("qwen3-tiny");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->hidden_size, 32);
  EXPECT_EQ(c->num_attention_heads, 4);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->q_dim(), 64);
  EXPECT_EQ(c->kv_dim(), 32);
  EXPECT_EQ(c->intermediate_size, 96);
  EXPECT_EQ(c->num_hidden_layers, 4);
  EXPECT_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_EQ(c->rope_theta, 1e6);
  EXPECT_EQ(c->max_position_embeddings, 40960);
  EXPECT_EQ(c->bos_token_id, -1);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  // 151936*32 + 4*(32*64 + 2*32*32 + 64*32 + 2*16 + 3*32*96 + 2*32) + 32.
  EXPECT_EQ(c->NumParams(), 4'923'808);
}

TEST(ModelConfigTest, RealQwen3ParamCounts) {
  // Qwen3-0.6B: 151936*1024 + 28*(1024*2048 + 2*1024*1024 + 2048*1024 +
  // 2*128 + 3*1024*3072 + 2*1024) + 1024; its model card says 0.6B in all and
  // 0.44B without embeddings.
  auto small = PresetConfig("qwen3-0.6b");
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->NumParams(), 596'049'920);
  EXPECT_EQ(small->NumParams() - 151936 * 1024, 440'467'456);
  // Qwen3-1.7B: 151936*2048 + 28*(2048*2048 + 2*1024*2048 + 2048*2048 +
  // 2*128 + 3*2048*6144 + 2*2048) + 2048 (card: 1.7B, 1.4B non-embedding).
  auto mid = PresetConfig("qwen3-1.7b");
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->NumParams(), 1'720'574'976);
  // Qwen3-4B: 151936*2560 + 36*(4096*2560 + 2*1024*2560 + 2560*4096 +
  // 2*128 + 3*2560*9728 + 2*2560) + 2560 (card: 4.0B, 3.6B non-embedding).
  auto big = PresetConfig("qwen3-4b");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->NumParams(), 4'022'468'096);
  EXPECT_EQ(big->num_hidden_layers, 36);
  EXPECT_EQ(big->num_attention_heads, 32);
}

TEST(ModelConfigTest, LeafOrderFollowsStateDict) {
  auto c = PresetConfig("qwen3-tiny");
  ASSERT_TRUE(c.ok());
  c->num_hidden_layers = 1;
  c->tie_word_embeddings = false;
  const std::vector<LeafSpec> specs = LeafSpecsFor(*c);
  EXPECT_EQ(Names(specs), (std::vector<std::string>{
                              "model.embed_tokens.weight",
                              "model.layers.0.self_attn.q_proj.weight",
                              "model.layers.0.self_attn.k_proj.weight",
                              "model.layers.0.self_attn.v_proj.weight",
                              "model.layers.0.self_attn.o_proj.weight",
                              "model.layers.0.self_attn.q_norm.weight",
                              "model.layers.0.self_attn.k_norm.weight",
                              "model.layers.0.mlp.gate_proj.weight",
                              "model.layers.0.mlp.up_proj.weight",
                              "model.layers.0.mlp.down_proj.weight",
                              "model.layers.0.input_layernorm.weight",
                              "model.layers.0.post_attention_layernorm.weight",
                              "model.norm.weight",
                              "lm_head.weight",
                          }));
  // PyTorch Linear weights are [out, in].
  EXPECT_EQ(specs[0].shape, (std::vector<int64_t>{151936, 32}));
  EXPECT_EQ(specs[1].shape, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(specs[2].shape, (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(specs[3].shape, (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(specs[4].shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(specs[5].shape, (std::vector<int64_t>{16}));
  EXPECT_EQ(specs[7].shape, (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(specs[9].shape, (std::vector<int64_t>{32, 96}));
  EXPECT_EQ(specs[10].shape, (std::vector<int64_t>{32}));
  EXPECT_EQ(specs[13].shape, (std::vector<int64_t>{151936, 32}));
  for (const LeafSpec& s : specs) EXPECT_EQ(s.dtype, DType::kF32) << s.name;
}

TEST(ModelConfigTest, Qwen2BiasesFollowTheirWeights) {
  const ModelConfig c = TinyQwen2();
  ASSERT_TRUE(ValidateModelConfig(c).ok()) << ValidateModelConfig(c);
  const std::vector<LeafSpec> specs = LeafSpecsFor(c);
  ASSERT_EQ(specs.size(), 1 + 2 * 12 + 1 + 1u);
  EXPECT_EQ(Names(specs)[1], "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(Names(specs)[2], "model.layers.0.self_attn.q_proj.bias");
  EXPECT_EQ(Names(specs)[3], "model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(Names(specs)[4], "model.layers.0.self_attn.k_proj.bias");
  EXPECT_EQ(Names(specs)[5], "model.layers.0.self_attn.v_proj.weight");
  EXPECT_EQ(Names(specs)[6], "model.layers.0.self_attn.v_proj.bias");
  EXPECT_EQ(Names(specs)[7], "model.layers.0.self_attn.o_proj.weight");
  EXPECT_EQ(Names(specs)[8], "model.layers.0.mlp.gate_proj.weight");
  EXPECT_EQ(Names(specs)[13], "model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(specs[2].shape, (std::vector<int64_t>{16}));
  EXPECT_EQ(specs[4].shape, (std::vector<int64_t>{8}));
  EXPECT_EQ(Names(specs).back(), "lm_head.weight");
  // 100*16*2 + 2*(16*16+16 + 2*(8*16+8) + 16*16 + 3*16*24 + 2*16) + 16.
  EXPECT_EQ(c.NumParams(), 3200 + 2 * (272 + 272 + 256 + 1152 + 32) + 16);
}

TEST(ModelConfigTest, TiedConfigHasNoLmHead) {
  ModelConfig c = TinyQwen2();
  c.tie_word_embeddings = true;
  EXPECT_EQ(Names(LeafSpecsFor(c)).back(), "model.norm.weight");
}

TEST(ModelConfigTest, ValidationRefusesInconsistentConfigs) {
  struct Case {
    const char* what;
    void (*mutate)(ModelConfig&);
    const char* message_part;
  };
  const Case cases[] = {
      {"zero vocab", [](ModelConfig& c) { c.vocab_size = 0; }, "vocab_size"},
      {"negative hidden", [](ModelConfig& c) { c.hidden_size = -16; },
       "hidden_size"},
      {"zero layers", [](ModelConfig& c) { c.num_hidden_layers = 0; },
       "num_hidden_layers"},
      {"zero kv heads", [](ModelConfig& c) { c.num_key_value_heads = 0; },
       "num_key_value_heads"},
      {"heads not multiple of kv",
       [](ModelConfig& c) { c.num_key_value_heads = 3; }, "not a multiple"},
      {"odd head_dim", [](ModelConfig& c) { c.head_dim = 5; }, "even"},
      {"zero max positions",
       [](ModelConfig& c) { c.max_position_embeddings = 0; },
       "max_position_embeddings"},
      {"eps zero", [](ModelConfig& c) { c.rms_norm_eps = 0; }, "rms_norm_eps"},
      {"theta nan", [](ModelConfig& c) { c.rope_theta = std::nan(""); },
       "rope_theta"},
      {"qwen2 without bias", [](ModelConfig& c) { c.attention_bias = false; },
       "attention_bias"},
      {"qwen2 with qk norm", [](ModelConfig& c) { c.qk_norm = true; },
       "qk_norm"},
      {"bos outside vocab", [](ModelConfig& c) { c.bos_token_id = 100; },
       "bos_token_id"},
      {"negative eos", [](ModelConfig& c) { c.eos_token_ids = {-2}; },
       "eos_token_id"},
      {"bad dtype", [](ModelConfig& c) { c.torch_dtype = "int8"; },
       "torch_dtype"},
      {"huge embedding",
       [](ModelConfig& c) {
         c.vocab_size = int64_t{1} << 40;
         c.hidden_size = 1 << 20;
       },
       "too large"},
      {"absurd depth", [](ModelConfig& c) { c.num_hidden_layers = 1 << 30; },
       "num_hidden_layers"},
  };
  for (const Case& k : cases) {
    ModelConfig c = TinyQwen2();
    k.mutate(c);
    Status s = ValidateModelConfig(c);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << k.what;
    EXPECT_NE(s.message().find(k.message_part), std::string::npos)
        << k.what << ": " << s;
    // No structure for an invalid config, and no crash computing it.
    EXPECT_TRUE(LeafSpecsFor(c).empty()) << k.what;
    EXPECT_EQ(c.NumParams(), 0) << k.what;
  }
}

TEST(ModelConfigTest, LlamaAndQwen3MayNotCarryAttentionBias) {
  auto c = PresetConfig("qwen3-tiny");
  ASSERT_TRUE(c.ok());
  c->attention_bias = true;
  Status s = ValidateModelConfig(*c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("o_proj"), std::string::npos) << s;
}

TEST(ModelConfigTest, DefaultContextLengthIsCappedByThePositions) {
  ModelConfig c = *PresetConfig("qwen3-tiny");
  c.max_position_embeddings = 40960;
  EXPECT_EQ(DefaultContextLength(c), 4096);
  c.max_position_embeddings = 512;
  EXPECT_EQ(DefaultContextLength(c), 512);
}

}  // namespace
}  // namespace rlrt
