// The engine serving LoRA adapters unmerged: against PyTorch's numbers for
// the first token, bitwise equal to each request alone in mixed batches,
// adapter-only updates (atomic, versioned, refused whole), version
// policies, the prefix cache kept apart per adapter, and bad adapters
// refused with nothing changed.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "models/lora/lora_config.h"
#include "models/lora/lora_merge.h"
#include "models/lora/peft_io.h"
#include "models/test_util.h"
#include "models/train/train_test_util.h"
#include "sampler/engine.h"
#include "sampler/update_test_util.h"

namespace rlrt {
namespace {

EngineOptions FixtureOptions() {
  EngineOptions o;
  o.model.model_dir = testing::FixtureDir("qwen3_tied");
  o.model.load_format = "safetensors";
  o.max_running_requests = 16;
  o.max_total_tokens = 2048;
  o.page_size = 4;
  o.context_length = 64;
  o.max_prefill_tokens = 64;
  o.max_loras = 3;
  o.max_lora_rank = 8;
  return o;
}

std::unique_ptr<SamplerEngine> Make(const EngineOptions& options, Mesh* mesh) {
  auto engine = SamplerEngine::Create(options, mesh);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? std::move(*engine) : nullptr;
}

const std::string kAll7 = testing::FixtureDir("qwen3_tied/lora_all7");
const std::string kQvRs = testing::FixtureDir("qwen3_tied/lora_qv_rs");

GenerateRequest Sampled(std::vector<int32_t> prompt, uint64_t seed,
                        std::string lora, int64_t max_new = 12) {
  GenerateRequest r;
  r.input_ids = std::move(prompt);
  r.sampling.temperature = 1.0f;
  r.stop.max_new_tokens = max_new;
  r.ignore_eos = true;
  r.seed = seed;
  r.return_logprobs = true;
  r.lora_name = std::move(lora);
  return r;
}

GenerateResult GenerateOrFail(SamplerEngine& engine, GenerateRequest r) {
  auto result = engine.Generate(std::move(r));
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *std::move(result) : GenerateResult{};
}

std::unique_ptr<LoraAdapter> ReadAdapter(const std::string& dir,
                                         const ModelConfig& config) {
  auto adapter = LoadPeftAdapter(dir, config);
  EXPECT_TRUE(adapter.ok()) << adapter.status();
  return adapter.ok() ? std::move(*adapter) : nullptr;
}

// An adapter-only update of `leaves` as `name`, built field by field.
proto::UpdateParams AdapterUpdate(const LoraAdapter& adapter, std::string name,
                                  uint64_t version, bool with_config) {
  proto::UpdateParams u = testing::HandBuiltUpdate(adapter.leaves(), version);
  u.set_lora_name(std::move(name));
  if (with_config) u.set_lora_config_json(LoraConfigToJson(adapter.config()));
  return u;
}

TEST(EngineLoraTest, FirstTokenLogprobMatchesPyTorch) {
  std::unique_ptr<Mesh> mesh_owner = testing::MakeMesh(2);
  Mesh& mesh = *mesh_owner;
  auto engine = Make(FixtureOptions(), &mesh);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->LoadAdapter("all7", kAll7).ok());
  const nlohmann::json expected =
      testing::ReadJsonFile(kAll7 + "/expected.json");
  for (const nlohmann::json& c : expected["cases"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    const std::vector<double> last =
        c["logits"].back().get<std::vector<double>>();
    double max_logit = last[0];
    for (double v : last) max_logit = std::max(max_logit, v);
    double sum = 0;
    for (double v : last) sum += std::exp(v - max_logit);
    for (uint64_t seed : {1u, 2u, 3u}) {
      const GenerateResult r =
          GenerateOrFail(*engine, Sampled(ids, seed, "all7", 1));
      ASSERT_EQ(r.samples.size(), 1u);
      const int32_t token = r.samples[0].token_ids[0];
      const double reference = last[token] - max_logit - std::log(sum);
      EXPECT_NEAR(r.samples[0].logprobs[0], reference, 1e-5)
          << "case of " << ids.size() << " tokens, token " << token;
    }
  }
}

TEST(EngineLoraTest, UnmergedServingEqualsTheMergedModel) {
  std::unique_ptr<Mesh> mesh_owner = testing::MakeMesh(2);
  Mesh& mesh = *mesh_owner;
  auto engine = Make(FixtureOptions(), &mesh);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->LoadAdapter("all7", kAll7).ok());
  // The merged model, W + s B A, written as a checkpoint and served plain.
  const LoadedCheckpoint base = testing::LoadFixture("qwen3_tied");
  auto adapter = ReadAdapter(kAll7, base.config);
  ASSERT_NE(adapter, nullptr);
  const std::filesystem::path merged_dir =
      std::filesystem::path(::testing::TempDir()) / "engine_lora_merged";
  std::filesystem::create_directories(merged_dir);
  {
    LoadedCheckpoint merged = testing::LoadFixture("qwen3_tied");
    ASSERT_TRUE(MergeLoraInto(*adapter, merged.config, merged.leaves).ok());
    ASSERT_TRUE(SaveCheckpoint(merged.leaves, merged.config, merged_dir).ok());
  }
  EngineOptions merged_options = FixtureOptions();
  merged_options.model.model_dir = merged_dir.string();
  auto merged_engine = Make(merged_options, &mesh);
  ASSERT_NE(merged_engine, nullptr);
  const std::vector<int32_t> prompt = {9, 29, 30, 78, 3, 76, 8};
  for (uint64_t seed : {11u, 12u}) {
    const GenerateResult a =
        GenerateOrFail(*engine, Sampled(prompt, seed, "all7"));
    const GenerateResult b =
        GenerateOrFail(*merged_engine, Sampled(prompt, seed, ""));
    ASSERT_EQ(a.samples[0].token_ids, b.samples[0].token_ids);
    for (size_t i = 0; i < a.samples[0].logprobs.size(); ++i)
      EXPECT_NEAR(a.samples[0].logprobs[i], b.samples[0].logprobs[i], 1e-5);
  }
  // And the adapter does change what is sampled.
  const GenerateResult plain = GenerateOrFail(*engine, Sampled(prompt, 11, ""));
  const GenerateResult adapted =
      GenerateOrFail(*engine, Sampled(prompt, 11, "all7"));
  EXPECT_NE(plain.samples[0].logprobs, adapted.samples[0].logprobs);
}

TEST(EngineLoraTest, MixedBatchIsBitwiseEachRequestAlone) {
  std::unique_ptr<Mesh> mesh_owner = testing::MakeMesh(2);
  Mesh& mesh = *mesh_owner;
  auto engine = Make(FixtureOptions(), &mesh);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->LoadAdapter("all7", kAll7).ok());
  ASSERT_TRUE(engine->LoadAdapter("qv", kQvRs).ok());
  const std::vector<std::string> loras = {"", "all7", "qv", "all7", "", "qv"};
  const std::vector<int32_t> prompt = {78, 27, 35, 85, 56, 68, 77, 69, 30};
  std::vector<GenerateResult> alone;
  for (size_t i = 0; i < loras.size(); ++i) {
    GenerateRequest r = Sampled(prompt, 100 + i, loras[i], 16);
    r.n = 2;
    alone.push_back(GenerateOrFail(*engine, std::move(r)));
  }
  std::vector<RequestHandle> handles;
  for (size_t i = 0; i < loras.size(); ++i) {
    GenerateRequest r = Sampled(prompt, 100 + i, loras[i], 16);
    r.n = 2;
    auto h = engine->Submit(std::move(r));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(*std::move(h));
  }
  for (size_t i = 0; i < handles.size(); ++i) {
    auto together = handles[i].Wait();
    ASSERT_TRUE(together.ok());
    for (size_t s = 0; s < 2; ++s) {
      EXPECT_EQ(together->samples[s].token_ids, alone[i].samples[s].token_ids)
          << "request " << i;
      EXPECT_EQ(together->samples[s].logprobs, alone[i].samples[s].logprobs)
          << "request " << i;
    }
  }
  EXPECT_GT(engine->Stats().scheduler.cached_prompt_tokens, 0);
}

TEST(EngineLoraTest, PrefixCacheNeverSharesKvAcrossAdapters) {
  std::unique_ptr<Mesh> mesh_owner = testing::MakeMesh(2);
  Mesh& mesh = *mesh_owner;
  const std::vector<int32_t> prompt = {78, 27, 35, 85, 56, 68, 77, 69, 30, 93};
  auto fresh = Make(FixtureOptions(), &mesh);
  ASSERT_NE(fresh, nullptr);
  ASSERT_TRUE(fresh->LoadAdapter("all7", kAll7).ok());
  const GenerateResult reference =
      GenerateOrFail(*fresh, Sampled(prompt, 5, "all7"));
  EXPECT_EQ(reference.cached_prompt_tokens, 0);

  auto engine = Make(FixtureOptions(), &mesh);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->LoadAdapter("all7", kAll7).ok());
  GenerateOrFail(*engine, Sampled(prompt, 5, ""));  // Caches the base's pages.
  const GenerateResult with_adapter =
      GenerateOrFail(*engine, Sampled(prompt, 5, "all7"));
  EXPECT_EQ(with_adapter.cached_prompt_tokens, 0);
  EXPECT_EQ(with_adapter.samples[0].logprobs, reference.samples[0].logprobs);
  // The adapter's own pages are reused by its next request.
  const GenerateResult again =
      GenerateOrFail(*engine, Sampled(prompt, 5, "all7"));
  EXPECT_GT(again.cached_prompt_tokens, 0);
  EXPECT_EQ(again.samples[0].logprobs, reference.samples[0].logprobs);
}

TEST(EngineLoraTest, AdapterUpdatesCreateThenReplaceAndAreVersioned) {
  std::unique_ptr<Mesh> mesh_owner = testing::MakeMesh(2);
  Mesh& mesh = *mesh_owner;
  auto engine = Make(FixtureOptions(), &mesh);
  ASSERT_NE(engine, nullptr);
  const LoadedCheckpoint base = testing::LoadFixture("qwen3_tied");
  auto trained = ReadAdapter(kAll7, base.config);
  auto zero = LoraAdapter::Create(base.config, trained->config());
  ASSERT_TRUE(zero.ok());
  const std::vector<int32_t> prompt = {9, 29, 30, 78, 3, 76, 8};
  const uint64_t base_version = engine->Stats().weight_version;

  // Without a config an unknown adapter cannot be created.
  auto refused = engine->UpdateParams(AdapterUpdate(**zero, "p", 3, false));
  EXPECT_EQ(refused.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(engine->Adapters().empty());

  // Created by its first update: a zero adapter gives the base exactly.
  ASSERT_TRUE(engine->UpdateParams(AdapterUpdate(**zero, "p", 3, true)).ok());
  ASSERT_EQ(*engine->AdapterVersion("p"), 3u);
  const GenerateResult plain = GenerateOrFail(*engine, Sampled(prompt, 7, ""));
  const GenerateResult at3 = GenerateOrFail(*engine, Sampled(prompt, 7, "p"));
  EXPECT_EQ(at3.samples[0].logprobs, plain.samples[0].logprobs);
  for (uint64_t v : at3.samples[0].weight_versions) EXPECT_EQ(v, 3u);
  for (uint64_t v : plain.samples[0].weight_versions)
    EXPECT_EQ(v, base_version);

  // Replaced in place; the base version does not move.
  const void* before = engine->buffers().weights;
  auto applied = engine->UpdateParams(AdapterUpdate(*trained, "p", 4, false));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->version, 4u);
  EXPECT_EQ(engine->Stats().weight_version, base_version);
  EXPECT_EQ(engine->buffers().weights, before);
  ASSERT_TRUE(engine->LoadAdapter("reference", kAll7).ok());
  const GenerateResult at4 = GenerateOrFail(*engine, Sampled(prompt, 7, "p"));
  const GenerateResult loaded =
      GenerateOrFail(*engine, Sampled(prompt, 7, "reference"));
  EXPECT_EQ(at4.samples[0].logprobs, loaded.samples[0].logprobs);
  for (uint64_t v : at4.samples[0].weight_versions) EXPECT_EQ(v, 4u);

  // Refused whole: an old version, a corrupted payload, a wrong leaf, and a
  // config other than the resident one. Version 4's outputs stay.
  auto old = engine->UpdateParams(AdapterUpdate(**zero, "p", 4, false));
  EXPECT_EQ(old.status().code(), StatusCode::kFailedPrecondition);
  proto::UpdateParams corrupt = AdapterUpdate(**zero, "p", 5, false);
  corrupt.set_expected_content_hash(123);
  EXPECT_EQ(engine->UpdateParams(corrupt).status().code(),
            StatusCode::kDataLoss);
  proto::UpdateParams wrong_leaf = AdapterUpdate(**zero, "p", 5, false);
  wrong_leaf.mutable_leaves(3)->mutable_data()->resize(4);
  EXPECT_EQ(engine->UpdateParams(wrong_leaf).status().code(),
            StatusCode::kInvalidArgument);
  LoraConfig other = trained->config();
  other.alpha *= 2;
  proto::UpdateParams other_config = AdapterUpdate(**zero, "p", 5, false);
  other_config.set_lora_config_json(LoraConfigToJson(other));
  EXPECT_EQ(engine->UpdateParams(other_config).status().code(),
            StatusCode::kInvalidArgument);
  auto qv = ReadAdapter(kQvRs, base.config);
  EXPECT_EQ(
      engine->UpdateParams(AdapterUpdate(*qv, "p", 5, false)).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(*engine->AdapterVersion("p"), 4u);
  const GenerateResult still = GenerateOrFail(*engine, Sampled(prompt, 7, "p"));
  EXPECT_EQ(still.samples[0].logprobs, at4.samples[0].logprobs);
  // The unknown-name refusal happened before the step boundary.
  EXPECT_EQ(engine->Stats().updates_refused, 5);
}

// A request that decodes while updates land: under "latest" it moves to
// each new version at the next step; under "pin" it finishes with the one
// it started under, and its tokens are those of that version alone.
std::vector<uint64_t> VersionsUnderUpdates(const std::string& policy,
                                           GenerateResult* result,
                                           GenerateResult* alone_at_1) {
  std::unique_ptr<Mesh> mesh_owner = testing::MakeMesh(2);
  Mesh& mesh = *mesh_owner;
  EngineOptions options = FixtureOptions();
  options.lora_version_policy = policy;
  options.lora_resident_versions = 2;
  auto engine = Make(options, &mesh);
  const LoadedCheckpoint base = testing::LoadFixture("qwen3_tied");
  auto v1 = ReadAdapter(kAll7, base.config);
  auto v2 = LoraAdapter::Create(base.config, v1->config());
  EXPECT_TRUE(engine->UpdateParams(AdapterUpdate(*v1, "p", 1, true)).ok());
  *alone_at_1 = GenerateOrFail(*engine, Sampled({9, 29, 30}, 3, "p", 40));
  std::atomic<int> tokens{0};
  GenerateRequest r = Sampled({9, 29, 30}, 3, "p", 40);
  r.on_token = [&](const TokenEvent&) { tokens.fetch_add(1); };
  auto handle = engine->Submit(std::move(r));
  EXPECT_TRUE(handle.ok());
  while (tokens.load() < 5) std::this_thread::yield();
  EXPECT_TRUE(engine->UpdateParams(AdapterUpdate(**v2, "p", 2, false)).ok());
  *result = *handle->Wait();
  // A request submitted now runs with version 2.
  const GenerateResult after =
      GenerateOrFail(*engine, Sampled({9, 29, 30}, 3, "p", 4));
  for (uint64_t v : after.samples[0].weight_versions) EXPECT_EQ(v, 2u);
  return result->samples[0].weight_versions;
}

TEST(EngineLoraTest, LatestPolicyMovesRunningRequestsToTheNewVersion) {
  GenerateResult result, alone;
  const std::vector<uint64_t> versions =
      VersionsUnderUpdates("latest", &result, &alone);
  ASSERT_EQ(versions.size(), 40u);
  EXPECT_EQ(versions.front(), 1u);
  EXPECT_EQ(versions.back(), 2u);
}

TEST(EngineLoraTest, PinPolicyFinishesRequestsUnderTheirVersion) {
  GenerateResult result, alone;
  const std::vector<uint64_t> versions =
      VersionsUnderUpdates("pin", &result, &alone);
  ASSERT_EQ(versions.size(), 40u);
  for (uint64_t v : versions) EXPECT_EQ(v, 1u);
  EXPECT_EQ(result.samples[0].token_ids, alone.samples[0].token_ids);
  EXPECT_EQ(result.samples[0].logprobs, alone.samples[0].logprobs);
}

TEST(EngineLoraTest, ResidencyIsBoundedWithLeastRecentlyUsedEviction) {
  std::unique_ptr<Mesh> mesh_owner = testing::MakeMesh(2);
  Mesh& mesh = *mesh_owner;
  EngineOptions options = FixtureOptions();
  options.max_loras = 2;
  auto engine = Make(options, &mesh);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->LoadAdapter("a", kAll7).ok());
  ASSERT_TRUE(engine->LoadAdapter("b", kQvRs).ok());
  GenerateOrFail(*engine,
                 Sampled({1, 2, 3}, 1, "a", 2));  // "b" is now the LRU.
  auto evicted = engine->LoadAdapter("c", kAll7);
  ASSERT_TRUE(evicted.ok());
  EXPECT_EQ(*evicted, "b");
  EXPECT_EQ(engine->Submit(Sampled({1, 2}, 1, "b")).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(engine->LoadAdapter("a", kQvRs).status().code(),
            StatusCode::kAlreadyExists);

  // Both resident adapters busy: a third is refused, nothing evicted.
  std::atomic<bool> release{false};
  std::vector<RequestHandle> busy;
  for (const char* name : {"a", "c"}) {
    GenerateRequest r = Sampled({1, 2, 3}, 1, name, 40);
    r.on_token = [&](const TokenEvent&) {
      while (!release.load()) std::this_thread::yield();
    };
    busy.push_back(*engine->Submit(std::move(r)));
  }
  while (!engine->Adapters()[0].busy || !engine->Adapters()[1].busy)
    std::this_thread::yield();
  EXPECT_EQ(engine->LoadAdapter("d", kAll7).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(engine->Adapters().size(), 2u);
  // Unloading a busy adapter lets its requests finish with it.
  ASSERT_TRUE(engine->UnloadAdapter("a").ok());
  release = true;
  for (RequestHandle& h : busy) {
    auto r = h.Wait();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->samples[0].finish_reason, FinishReason::kLength);
  }
  EXPECT_EQ(engine->UnloadAdapter("a").code(), StatusCode::kNotFound);
}

TEST(EngineLoraTest, BadAdaptersAreRefusedWithNothingChanged) {
  std::unique_ptr<Mesh> mesh_owner = testing::MakeMesh(2);
  Mesh& mesh = *mesh_owner;
  EngineOptions options = FixtureOptions();
  options.max_lora_rank = 2;  // The fixtures are rank 4.
  auto engine = Make(options, &mesh);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->LoadAdapter("r4", kAll7).status().code(),
            StatusCode::kInvalidArgument);
  // Made for another base (the Llama fixture).
  options.max_lora_rank = 8;
  engine = Make(options, &mesh);
  auto llama =
      engine->LoadAdapter("llama", testing::FixtureDir("llama/lora_all7"));
  EXPECT_EQ(llama.status().code(), StatusCode::kInvalidArgument)
      << llama.status();
  EXPECT_EQ(engine->LoadAdapter("none", "/nonexistent/adapter").status().code(),
            StatusCode::kNotFound);
  // Truncated weights.
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "engine_lora_truncated";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kAll7 + "/adapter_config.json",
                             dir / "adapter_config.json",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(kAll7 + "/adapter_model.safetensors",
                             dir / "adapter_model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(
      dir / "adapter_model.safetensors",
      std::filesystem::file_size(dir / "adapter_model.safetensors") - 10);
  EXPECT_FALSE(engine->LoadAdapter("cut", dir.string()).ok());
  EXPECT_TRUE(engine->Adapters().empty());
  // No LoRA at all.
  options.max_loras = 0;
  engine = Make(options, &mesh);
  EXPECT_EQ(engine->LoadAdapter("a", kAll7).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine->Submit(Sampled({1, 2}, 1, "a")).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(EngineLoraTest, SharedBaseIsReadInPlaceAndNeverWritten) {
  std::unique_ptr<Mesh> mesh_owner = testing::MakeMesh(2);
  Mesh& mesh = *mesh_owner;
  const LoadedCheckpoint base = testing::LoadFixture("qwen3_tied");
  EngineOptions options = FixtureOptions();
  auto engine = SamplerEngine::CreateOnSharedBase(options, &mesh, base.config,
                                                  base.leaves);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_TRUE((*engine)->base_is_shared());
  EXPECT_EQ((*engine)->buffers().weights, base.leaves.data(0));
  auto own = Make(options, &mesh);
  const std::vector<int32_t> prompt = {9, 29, 30, 78};
  EXPECT_EQ(
      GenerateOrFail(**engine, Sampled(prompt, 2, "")).samples[0].logprobs,
      GenerateOrFail(*own, Sampled(prompt, 2, "")).samples[0].logprobs);
  // Base writes are refused; adapters work as usual.
  EXPECT_EQ((*engine)
                ->UpdateParams(testing::HandBuiltUpdate(base.leaves, 9))
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ((*engine)->PerturbWeights(1, 0.1, 1).status().code(),
            StatusCode::kFailedPrecondition);
  auto adapter = ReadAdapter(kAll7, base.config);
  ASSERT_TRUE(
      (*engine)->UpdateParams(AdapterUpdate(*adapter, "p", 1, true)).ok());
  ASSERT_TRUE(own->LoadAdapter("p", kAll7).ok());
  EXPECT_EQ(
      GenerateOrFail(**engine, Sampled(prompt, 2, "p")).samples[0].logprobs,
      GenerateOrFail(*own, Sampled(prompt, 2, "p")).samples[0].logprobs);
}

}  // namespace
}  // namespace rlrt
