// LoRA over HTTP: adapters loaded and unloaded at run time (vLLM's
// endpoints), listed in /v1/models, picked per request by "lora_path"
// (/generate) or "model" (OpenAI), updated by adapter-only UpdateParams;
// bad adapters get a 4xx and change nothing.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "base/format.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "models/lora/lora_adapter.h"
#include "models/lora/peft_io.h"
#include "sampler/engine_test_util.h"
#include "sampler/server/rollout_server.h"
#include "tests/rollout_server_test_util.h"
#include "trainer_bridge/update_builder.h"

namespace rlrt {
namespace {

// A rank-4 adapter for stories260K whose B is far from zero, so it changes
// what the model says.
std::unique_ptr<LoraAdapter> StoriesAdapter(uint64_t seed) {
  const LoadedModel model = testing::LoadStories();
  auto adapter =
      LoraAdapter::Create(model.config, LoraConfig{.rank = 4, .alpha = 8});
  EXPECT_TRUE(adapter.ok());
  EXPECT_TRUE((*adapter)->InitLikePeft(seed).ok());
  EXPECT_TRUE(Perturb((*adapter)->leaves(), seed, 0.5, 1 << 20, nullptr).ok());
  return std::move(*adapter);
}

std::filesystem::path SavedAdapter(const std::string& name, uint64_t seed) {
  const std::filesystem::path dir = TempDir(name);
  EXPECT_TRUE(SavePeftAdapter(dir, *StoriesAdapter(seed)).ok());
  return dir;
}

json GreedyWith(const std::string& lora) {
  json body = kGreedyOnce;
  body["lora_path"] = lora;
  return body;
}

std::vector<int32_t> InProcessGreedy(SamplerEngine& engine,
                                     const std::string& lora) {
  GenerateRequest r = testing::GreedyText("Once upon a time", 24);
  r.lora_name = lora;
  auto result = engine.Generate(r);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->samples[0].token_ids : std::vector<int32_t>{};
}

TEST(RolloutServerLoraTest, LoadServeListAndUnloadAdapters) {
  Served s;
  const std::filesystem::path dir = SavedAdapter("lora_a", 3);
  json loaded = s.Post("/v1/load_lora_adapter",
                       {{"lora_name", "a"}, {"lora_path", dir.string()}});
  EXPECT_EQ(loaded["ok"], true);

  const json models = s.Get("/v1/models");
  ASSERT_EQ(models["data"].size(), 2u) << models.dump();
  EXPECT_EQ(models["data"][1]["id"], "a");
  EXPECT_EQ(models["data"][1]["lora_rank"], 4);
  EXPECT_EQ(models["data"][1]["parent"], models["data"][0]["id"]);
  EXPECT_EQ(models["data"][1]["root"], dir.string());

  // /generate's lora_path: what the engine gives in process, and not the
  // base's answer.
  Served local;
  ASSERT_TRUE(local.engine->LoadAdapter("a", dir.string()).ok());
  const std::vector<int32_t> expected = InProcessGreedy(*local.engine, "a");
  const json adapted = s.Post("/generate", GreedyWith("a"));
  EXPECT_EQ(adapted["output_ids"].get<std::vector<int32_t>>(), expected);
  const json base = s.Post("/generate", kGreedyOnce);
  EXPECT_NE(base["output_ids"], adapted["output_ids"]);

  // OpenAI: the adapter by model name, echoed back.
  const json completion =
      s.Post("/v1/completions", {{"model", "a"},
                                 {"prompt", "Once upon a time"},
                                 {"max_tokens", 24},
                                 {"temperature", 0},
                                 {"ignore_eos", true}});
  EXPECT_EQ(completion["model"], "a");
  EXPECT_EQ(completion["choices"][0]["text"], adapted["text"]);

  // Unknown names: 404, naming what is served.
  const json unknown =
      s.Post("/v1/completions", {{"model", "nope"}, {"prompt", "Hi"}}, 404);
  EXPECT_NE(unknown.dump().find("\\\"a\\\""), std::string::npos) << unknown;
  s.Post("/generate", GreedyWith("nope"), 404);

  s.Post("/v1/unload_lora_adapter", {{"lora_name", "a"}});
  s.Post("/v1/unload_lora_adapter", {{"lora_name", "a"}}, 404);
  EXPECT_EQ(s.Get("/v1/models")["data"].size(), 1u);
  s.Post("/generate", GreedyWith("a"), 404);
  std::filesystem::remove_all(dir);
}

TEST(RolloutServerLoraTest, BadAdaptersGetA4xxAndChangeNothing) {
  EngineOptions engine = testing::StoriesOptions();
  engine.max_lora_rank = 2;
  Served small_rank({}, engine);
  const std::filesystem::path dir = SavedAdapter("lora_bad", 4);
  const json rank =
      small_rank.Post("/v1/load_lora_adapter",
                      {{"lora_name", "a"}, {"lora_path", dir.string()}}, 400);
  EXPECT_NE(rank.dump().find("max_lora_rank 2"), std::string::npos) << rank;

  Served s;
  const std::string fixtures = RLRT_SOURCE_DIR "/tests/reference/fixtures";
  // Made for another base.
  s.Post(
      "/v1/load_lora_adapter",
      {{"lora_name", "q"}, {"lora_path", fixtures + "/qwen3_tied/lora_all7"}},
      400);
  s.Post("/v1/load_lora_adapter",
         {{"lora_name", "m"}, {"lora_path", "/nonexistent/adapter"}}, 404);
  // A truncated weights file.
  const std::filesystem::path cut = TempDir("lora_cut");
  std::filesystem::copy(dir, cut,
                        std::filesystem::copy_options::recursive |
                            std::filesystem::copy_options::overwrite_existing);
  const auto weights = cut / "adapter_model.safetensors";
  std::filesystem::resize_file(weights,
                               std::filesystem::file_size(weights) / 2);
  const json truncated =
      s.Post("/v1/load_lora_adapter",
             {{"lora_name", "t"}, {"lora_path", cut.string()}}, 400);
  EXPECT_FALSE(truncated.is_discarded());
  // Malformed bodies.
  s.Post("/v1/load_lora_adapter", {{"lora_path", dir.string()}}, 400);
  s.Post("/v1/load_lora_adapter", {{"lora_name", 3}, {"lora_path", "x"}}, 400);
  s.Post("/v1/load_lora_adapter",
         {{"lora_name", std::string(300, 'n')}, {"lora_path", dir.string()}},
         400);
  const std::string base_name = s.Get("/v1/models")["data"][0]["id"];
  s.Post("/v1/load_lora_adapter",
         {{"lora_name", base_name}, {"lora_path", dir.string()}}, 400);
  s.Post("/v1/unload_lora_adapter", json::object(), 400);
  EXPECT_EQ(s.Get("/v1/models")["data"].size(), 1u);
  EXPECT_TRUE(s.engine->Adapters().empty());
  // A name taken stays what it was.
  s.Post("/v1/load_lora_adapter",
         {{"lora_name", "a"}, {"lora_path", dir.string()}});
  s.Post("/v1/load_lora_adapter",
         {{"lora_name", "a"}, {"lora_path", dir.string()}}, 409);
  EXPECT_EQ(s.Get("/v1/models")["data"].size(), 2u);
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(cut);
}

TEST(RolloutServerLoraTest, LoadingAndUnloadingAreAdminOnly) {
  RolloutServerOptions o;
  o.admin_token = "s3cret";
  Served s(o);
  const std::filesystem::path dir = SavedAdapter("lora_admin", 5);
  const json body = {{"lora_name", "a"}, {"lora_path", dir.string()}};
  s.Post("/v1/load_lora_adapter", body, 401);
  EXPECT_TRUE(s.engine->Adapters().empty());
  s.Post("/v1/load_lora_adapter", body, 200,
         {{"Authorization", "Bearer s3cret"}});
  s.Post("/v1/unload_lora_adapter", {{"lora_name", "a"}}, 401);
  EXPECT_EQ(s.engine->Adapters().size(), 1u);
  std::filesystem::remove_all(dir);
}

// The trainer's path: an UpdateParams holding only the adapter, created by
// its first update, replaced by the next, refused (409, with the adapter's
// version) when not newer.
TEST(RolloutServerLoraTest, AdapterOnlyUpdateParamsOverHttp) {
  Served s, local;
  std::unique_ptr<LoraAdapter> adapter = StoriesAdapter(6);
  auto post = [&](const LoraAdapter& a, uint64_t version) {
    proto::UpdateParams update;
    EXPECT_TRUE(
        BuildUpdateParams(a.leaves(), version,
                          {.include_content_hash = true,
                           .lora_name = "policy",
                           .lora_config_json = LoraConfigToJson(a.config())},
                          nullptr, &update)
            .ok());
    return s.client->Post("/admin/update_params", update.SerializeAsString(),
                          "application/x-protobuf");
  };
  auto res = post(*adapter, 3);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json reply = json::parse(res->body);
  EXPECT_EQ(reply["version"], 3);
  EXPECT_EQ(reply["lora_name"], "policy");
  EXPECT_EQ(reply["content_hash"], HexU64(ContentHash(adapter->leaves())));
  const json served = s.Post("/generate", GreedyWith("policy"));
  EXPECT_EQ(served["meta_info"]["weight_version"], 3);
  ASSERT_TRUE(
      local.engine->AddAdapter("policy", StoriesAdapter(6), "same weights")
          .ok());
  EXPECT_EQ(served["output_ids"].get<std::vector<int32_t>>(),
            InProcessGreedy(*local.engine, "policy"));

  res = post(*adapter, 3);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 409) << res->body;
  EXPECT_EQ(json::parse(res->body)["version"], 3);
  // A different structure under the same name: refused, version 3 serves.
  std::unique_ptr<LoraAdapter> other = StoriesAdapter(7);
  auto wider = LoraAdapter::Create(testing::LoadStories().config,
                                   LoraConfig{.rank = 8, .alpha = 8});
  ASSERT_TRUE(wider.ok());
  res = post(**wider, 4);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  EXPECT_EQ(s.Post("/generate", GreedyWith("policy"))["output_ids"],
            served["output_ids"]);
  res = post(*other, 4);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(s.Get("/v1/models")["data"][1]["weight_version"], 4);
}

}  // namespace
}  // namespace rlrt
