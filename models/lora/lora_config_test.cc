#include "models/lora/lora_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace rlrt {
namespace {

std::string PeftJson(const std::string& extra) {
  return R"({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4,
             "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"])" +
         extra + "}";
}

TEST(LoraConfigTest, ScaleIsAlphaOverRankOrOverItsSquareRoot) {
  LoraConfig c;
  c.rank = 16;
  c.alpha = 32;
  EXPECT_EQ(c.Scale(), 2.0f);
  c.use_rslora = true;
  EXPECT_EQ(c.Scale(), 8.0f);
  c.rank = 2;
  c.alpha = 3;
  EXPECT_EQ(c.Scale(), static_cast<float>(3 / std::sqrt(2.0)));
}

TEST(LoraConfigTest, ReadsPeftFields) {
  auto c = LoraConfigFromJson(PeftJson(R"(, "use_rslora": true,
      "lora_dropout": 0.05, "base_model_name_or_path": "Qwen/Qwen3-0.6B",
      "bias": "none", "fan_in_fan_out": false, "use_dora": false,
      "rank_pattern": {}, "alpha_pattern": {}, "layers_to_transform": null,
      "modules_to_save": null, "inference_mode": true)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rank, 4);
  EXPECT_EQ(c->alpha, 8);
  EXPECT_TRUE(c->use_rslora);
  EXPECT_DOUBLE_EQ(c->dropout, 0.05);
  EXPECT_EQ(c->base_model_name_or_path, "Qwen/Qwen3-0.6B");
  EXPECT_TRUE(c->Targets(LayerParam::kQProj));
  EXPECT_TRUE(c->Targets(LayerParam::kVProj));
  EXPECT_FALSE(c->Targets(LayerParam::kKProj));
  EXPECT_FALSE(c->Targets(LayerParam::kDownProj));
}

TEST(LoraConfigTest, TargetModulesAsPeftMatchesThem) {
  auto all = LoraConfigFromJson(
      R"({"peft_type": "LORA", "r": 2, "target_modules": "all-linear"})");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->target_mask, kAllLoraModules);
  EXPECT_EQ(all->alpha, 8);  // PEFT's default lora_alpha
  auto qualified = LoraConfigFromJson(
      R"({"peft_type": "LORA", "r": 2,
          "target_modules": ["self_attn.o_proj", "mlp.down_proj"]})");
  ASSERT_TRUE(qualified.ok()) << qualified.status();
  EXPECT_EQ(LoraTargetModulesString(qualified->target_mask),
            "o_proj,down_proj");
  // None named: PEFT's default for these architectures, q and v.
  auto fallback = LoraConfigFromJson(R"({"peft_type": "LORA", "r": 2})");
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_EQ(LoraTargetModulesString(fallback->target_mask), "q_proj,v_proj");
}

TEST(LoraConfigTest, RefusesWhatItCannotRunByName) {
  struct Case {
    std::string json;
    StatusCode code;
    std::string mentions;
  };
  const Case cases[] = {
      {PeftJson(R"(, "use_dora": true)"), StatusCode::kUnimplemented,
       "use_dora"},
      {PeftJson(R"(, "rank_pattern": {"q_proj": 8})"),
       StatusCode::kUnimplemented, "rank_pattern"},
      {PeftJson(R"(, "layers_to_transform": [0, 1])"),
       StatusCode::kUnimplemented, "layers_to_transform"},
      {PeftJson(R"(, "modules_to_save": ["lm_head"])"),
       StatusCode::kUnimplemented, "modules_to_save"},
      {PeftJson(R"(, "bias": "all")"), StatusCode::kUnimplemented, "bias"},
      {PeftJson(R"(, "fan_in_fan_out": true)"), StatusCode::kUnimplemented,
       "fan_in_fan_out"},
      {R"({"peft_type": "LORA", "r": 2, "target_modules": ".*q_proj"})",
       StatusCode::kUnimplemented, "regular expression"},
      {R"({"peft_type": "LORA", "r": 2,
           "target_modules": ["model.layers.0.self_attn.q_proj"]})",
       StatusCode::kUnimplemented, "some layers"},
      {R"({"peft_type": "LORA", "r": 2, "target_modules": ["lm_head"]})",
       StatusCode::kInvalidArgument, "lm_head"},
      {R"({"peft_type": "LORA", "r": 2, "target_modules": ["c_attn"]})",
       StatusCode::kInvalidArgument, "c_attn"},
      {R"({"peft_type": "IA3", "r": 2})", StatusCode::kUnimplemented, "IA3"},
      {R"({"peft_type": "LORA", "task_type": "SEQ_CLS", "r": 2})",
       StatusCode::kUnimplemented, "SEQ_CLS"},
      {R"({"r": 2})", StatusCode::kInvalidArgument, "peft_type"},
      {R"({"peft_type": "LORA", "r": 0})", StatusCode::kInvalidArgument, "r"},
      {R"({"peft_type": "LORA", "r": 2.5})", StatusCode::kInvalidArgument, "r"},
      {R"({"peft_type": "LORA", "r": 2, "lora_alpha": "8"})",
       StatusCode::kInvalidArgument, "lora_alpha"},
      {R"({"peft_type": "LORA", "r": 2, "lora_alpha": -1})",
       StatusCode::kInvalidArgument, "lora_alpha"},
      {R"({"peft_type": "LORA", "r": 2, "target_modules": []})",
       StatusCode::kInvalidArgument, "target_modules"},
      {R"({"peft_type": "LORA", "r": 2, "target_modules": [3]})",
       StatusCode::kInvalidArgument, "target_modules"},
      {R"([1, 2])", StatusCode::kInvalidArgument, "object"},
      {R"({"peft_type": "LORA", "r": )", StatusCode::kInvalidArgument,
       "not valid JSON"},
      {std::string(200, '[') + std::string(200, ']'),
       StatusCode::kInvalidArgument, "nest"},
  };
  for (const Case& c : cases) {
    auto parsed = LoraConfigFromJson(c.json);
    ASSERT_FALSE(parsed.ok()) << c.json;
    EXPECT_EQ(parsed.status().code(), c.code) << parsed.status();
    EXPECT_NE(parsed.status().message().find(c.mentions), std::string::npos)
        << parsed.status() << " should mention " << c.mentions;
  }
  EXPECT_FALSE(
      LoraConfigFromJson(std::string(kMaxAdapterConfigBytes + 1, ' ')).ok());
}

TEST(LoraConfigTest, JsonRoundTripsAndTargetFlagParses) {
  LoraConfig c;
  c.rank = 8;
  c.alpha = 16;
  c.use_rslora = true;
  c.target_mask = *ParseLoraTargetModules("k_proj,up_proj");
  c.base_model_name_or_path = "base";
  const std::string text = LoraConfigToJson(c);
  auto back = LoraConfigFromJson(text);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_EQ(back->rank, 8);
  EXPECT_EQ(back->alpha, 16);
  EXPECT_TRUE(back->use_rslora);
  EXPECT_EQ(back->target_mask, c.target_mask);
  EXPECT_EQ(back->base_model_name_or_path, "base");
  EXPECT_NE(text.find(R"("peft_type": "LORA")"), std::string::npos);
  EXPECT_NE(text.find(R"("task_type": "CAUSAL_LM")"), std::string::npos);

  EXPECT_EQ(*ParseLoraTargetModules("all"), kAllLoraModules);
  EXPECT_FALSE(ParseLoraTargetModules("q_proj,,v_proj").ok());
  EXPECT_FALSE(ParseLoraTargetModules("").ok());
  EXPECT_FALSE(ParseLoraTargetModules("lm_head").ok());
  EXPECT_FALSE(ValidateLoraConfig(c, 4).ok());  // rank 8 over a limit of 4
  EXPECT_TRUE(ValidateLoraConfig(c, 8).ok());
}

}  // namespace
}  // namespace rlrt
