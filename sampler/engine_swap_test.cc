// Hot weight swaps on a running engine: the reference flow (dummy engine,
// real checkpoint pushed with UpdateParams), refusals that change nothing,
// versions of in-flight requests, cache flushing, and no rebuilds.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "models/forward/model_source.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "sampler/engine.h"
#include "sampler/engine_test_util.h"
#include "sampler/update_apply.h"
#include "sampler/update_test_util.h"

namespace rlrt {
namespace {

using testing::GoldenContinuation;
using testing::GreedyText;
using testing::HandBuiltUpdate;
using testing::MakeEngine;
using testing::MakeMesh;
using testing::StoriesOptions;

std::vector<int32_t> Greedy(SamplerEngine& engine, int64_t n = 0) {
  const std::vector<int32_t> golden = GoldenContinuation();
  auto r = engine.Generate(
      GreedyText("Once upon a time", n > 0 ? n : golden.size()));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->samples[0].token_ids : std::vector<int32_t>{};
}

class EngineSwapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mesh_ = MakeMesh(2);
    engine_ = MakeEngine(StoriesOptions("dummy"), mesh_.get());
    ASSERT_NE(engine_, nullptr);
    checkpoint_ = std::make_unique<LoadedModel>(testing::LoadStories());
  }
  std::unique_ptr<Mesh> mesh_;
  std::unique_ptr<SamplerEngine> engine_;
  std::unique_ptr<LoadedModel> checkpoint_;
};

TEST_F(EngineSwapTest, DummyEnginePlusCheckpointUpdateEqualsCheckpointEngine) {
  const EngineBuffers before = engine_->buffers();
  const std::vector<int32_t> dummy_tokens = Greedy(*engine_);
  auto report = engine_->UpdateParams(HandBuiltUpdate(checkpoint_->weights, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->version, 1u);
  const std::vector<int32_t> swapped = Greedy(*engine_);
  EXPECT_EQ(swapped, GoldenContinuation());
  EXPECT_NE(swapped, dummy_tokens);

  auto direct = MakeEngine(StoriesOptions("safetensors"), mesh_.get());
  EXPECT_EQ(Greedy(*direct), swapped);
  auto sums = engine_->WeightsChecksum();
  ASSERT_TRUE(sums.ok());
  EXPECT_EQ(sums->content_hash,
            ComputeChecksums(checkpoint_->weights).content_hash);
  EXPECT_EQ(sums->content_hash, direct->WeightsChecksum()->content_hash);

  const EngineBuffers after = engine_->buffers();
  EXPECT_EQ(after.weights, before.weights);
  EXPECT_EQ(after.kv_cache, before.kv_cache);
  EXPECT_EQ(after.structure_fingerprint, before.structure_fingerprint);
  EXPECT_EQ(engine_->Stats().weight_version, 1u);
  EXPECT_EQ(engine_->Stats().updates_applied, 1);
}

TEST_F(EngineSwapTest, RefusedUpdatesLeaveTheEngineServingItsOldWeights) {
  ASSERT_TRUE(
      engine_->UpdateParams(HandBuiltUpdate(checkpoint_->weights, 3)).ok());
  const LeafChecksums sums = *engine_->WeightsChecksum();

  std::vector<std::pair<std::string, proto::UpdateParams>> bad;
  bad.emplace_back("same version", HandBuiltUpdate(checkpoint_->weights, 3));
  bad.emplace_back("older version", HandBuiltUpdate(checkpoint_->weights, 2));
  auto other = LoadModel(ModelSource{.model_dir = RLRT_SOURCE_DIR
                                     "/tests/reference/fixtures/qwen3_untied",
                                     .preset = "",
                                     .load_format = "auto",
                                     .seed = 0},
                         nullptr);
  ASSERT_TRUE(other.ok());
  bad.emplace_back("other structure", HandBuiltUpdate(other->weights, 4));
  proto::UpdateParams shape = HandBuiltUpdate(checkpoint_->weights, 4);
  shape.mutable_leaves(3)->set_shape(0, shape.leaves(3).shape(0) + 1);
  bad.emplace_back("wrong shape", shape);
  proto::UpdateParams cut = HandBuiltUpdate(checkpoint_->weights, 4);
  cut.mutable_leaves(7)->mutable_data()->resize(cut.leaves(7).data().size() /
                                                2);
  bad.emplace_back("short leaf", cut);
  proto::UpdateParams hash = HandBuiltUpdate(checkpoint_->weights, 4);
  hash.set_expected_content_hash(sums.content_hash + 1);
  bad.emplace_back("wrong content hash", hash);
  for (auto& [what, update] : bad) {
    auto r = engine_->UpdateParams(update);
    EXPECT_FALSE(r.ok()) << what;
    EXPECT_EQ(engine_->WeightsChecksum()->content_hash, sums.content_hash)
        << what;
    EXPECT_EQ(engine_->Stats().weight_version, 3u) << what;
  }
  EXPECT_EQ(Greedy(*engine_), GoldenContinuation());
  EXPECT_EQ(engine_->Stats().updates_refused, static_cast<int64_t>(bad.size()));

  std::string bytes;
  ASSERT_TRUE(
      HandBuiltUpdate(checkpoint_->weights, 9).SerializeToString(&bytes));
  EXPECT_FALSE(
      engine_->UpdateParamsSerialized(bytes.substr(0, bytes.size() / 3)).ok());
  EXPECT_EQ(engine_->Stats().weight_version, 3u);
  ASSERT_TRUE(engine_->UpdateParamsSerialized(bytes).ok());
  EXPECT_EQ(engine_->Stats().weight_version, 9u);
}

// The engine's serialized path is the shared parse-and-apply path (the one
// the fuzz target drives): for the same bytes, the same verdict and the same
// words, and the same resulting weights.
TEST_F(EngineSwapTest, SerializedUpdatesTakeTheSharedParseAndApplyPath) {
  ParamLeaves mirror = *ParamLeaves::Allocate(checkpoint_->weights.specs());
  std::string good;
  ASSERT_TRUE(
      HandBuiltUpdate(checkpoint_->weights, 5).SerializeToString(&good));
  const std::vector<std::pair<std::string, std::string>> inputs = {
      {"truncated", good.substr(0, good.size() / 3)},
      {"garbage", std::string(64, '\xff')},
      {"valid", good},
      {"replayed", good},
  };
  proto::UpdateParams scratch;
  for (const auto& [what, bytes] : inputs) {
    StatusOr<ApplyReport> shared =
        ApplySerializedUpdateParams(bytes, &scratch, mirror, nullptr);
    StatusOr<ApplyReport> engine = engine_->UpdateParamsSerialized(bytes);
    ASSERT_EQ(engine.ok(), shared.ok()) << what;
    if (!shared.ok()) {
      EXPECT_EQ(engine.status(), shared.status()) << what;
    }
    EXPECT_EQ(engine_->Stats().weight_version, mirror.version()) << what;
    if (mirror.version() > 0) {
      EXPECT_EQ(engine_->WeightsChecksum()->content_hash,
                ComputeChecksums(mirror).content_hash)
          << what;
    }
  }
  EXPECT_EQ(engine_->Stats().weight_version, 5u);
}

TEST_F(EngineSwapTest, InFlightRequestsSwitchVersionAtAStepBoundary) {
  const std::vector<int32_t> dummy_tokens = Greedy(*engine_, 300);
  const proto::UpdateParams update = HandBuiltUpdate(checkpoint_->weights, 1);
  std::atomic<int> seen{0};
  GenerateRequest r = GreedyText("Once upon a time", 300);
  r.on_token = [&](const TokenEvent&) { seen.fetch_add(1); };
  auto h = engine_->Submit(r);
  ASSERT_TRUE(h.ok());
  while (seen.load() < 40) std::this_thread::yield();
  ASSERT_TRUE(engine_->UpdateParams(update).ok());
  auto result = h->Wait();
  ASSERT_TRUE(result.ok());
  const SampleOutput& out = result->samples[0];
  ASSERT_EQ(out.weight_versions.size(), 300u);
  // One switch, from 0 to 1, after the 40 tokens already streamed.
  const auto first_new =
      std::find(out.weight_versions.begin(), out.weight_versions.end(), 1u);
  ASSERT_NE(first_new, out.weight_versions.end());
  const size_t switch_at = first_new - out.weight_versions.begin();
  EXPECT_GE(switch_at, 40u);
  for (size_t i = 0; i < out.weight_versions.size(); ++i)
    EXPECT_EQ(out.weight_versions[i], i < switch_at ? 0u : 1u) << i;
  // Before the switch the tokens are the dummy weights' own.
  EXPECT_EQ(std::vector<int32_t>(out.token_ids.begin(),
                                 out.token_ids.begin() + switch_at),
            std::vector<int32_t>(dummy_tokens.begin(),
                                 dummy_tokens.begin() + switch_at));
  EXPECT_GT(engine_->Stats().last_update_stall_ms, 0);
}

TEST_F(EngineSwapTest, FlushCacheDropsCachedPrefixes) {
  // 40 prompt tokens: two whole pages can be cached.
  GenerateRequest r;
  for (int i = 0; i < 40; ++i) r.input_ids.push_back(1 + (i * 31) % 500);
  r.sampling.temperature = 0;
  r.stop.max_new_tokens = 4;
  ASSERT_TRUE(engine_->Generate(r).ok());
  EXPECT_EQ(engine_->Generate(r)->cached_prompt_tokens, 32);
  proto::UpdateParams keep = HandBuiltUpdate(checkpoint_->weights, 1);
  keep.set_flush_cache(false);
  ASSERT_TRUE(engine_->UpdateParams(keep).ok());
  EXPECT_EQ(engine_->Generate(r)->cached_prompt_tokens, 32);
  proto::UpdateParams flush = HandBuiltUpdate(checkpoint_->weights, 2);
  flush.set_flush_cache(true);
  ASSERT_TRUE(engine_->UpdateParams(flush).ok());
  auto fresh = engine_->Generate(r);
  EXPECT_EQ(fresh->cached_prompt_tokens, 0);
  // And the fresh prefill under the new weights gives the new weights'
  // tokens, as a cache-less engine built from the checkpoint does.
  EngineOptions o = StoriesOptions("safetensors");
  o.enable_prefix_cache = false;
  auto direct = MakeEngine(o, mesh_.get());
  EXPECT_EQ(fresh->samples[0].token_ids,
            direct->Generate(r)->samples[0].token_ids);
}

TEST_F(EngineSwapTest, ManyUpdatesNeverRebuild) {
  const EngineBuffers before = engine_->buffers();
  auto trainer = testing::LoadStories();
  for (uint64_t v = 1; v <= 12; ++v) {
    ASSERT_TRUE(Perturb(trainer.weights, v, 1e-3, 5).ok());
    auto report = engine_->UpdateParams(HandBuiltUpdate(trainer.weights, v));
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(engine_->WeightsChecksum()->content_hash,
              ComputeChecksums(trainer.weights).content_hash);
  }
  const EngineBuffers after = engine_->buffers();
  EXPECT_EQ(after.weights, before.weights);
  EXPECT_EQ(after.kv_cache, before.kv_cache);
  EXPECT_EQ(after.structure_fingerprint, before.structure_fingerprint);
  EXPECT_EQ(engine_->Stats().weight_version, 12u);
}

TEST_F(EngineSwapTest, PerturbWeightsIsDeterministicAndGetsTheNextVersion) {
  auto twin = MakeEngine(StoriesOptions("dummy"), mesh_.get());
  auto a = engine_->PerturbWeights(7, 1e-2, 4);
  auto b = twin->PerturbWeights(7, 1e-2, 4);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->before.content_hash, b->before.content_hash);
  EXPECT_NE(a->before.content_hash, a->after.content_hash);
  EXPECT_EQ(a->after.content_hash, b->after.content_hash);
  EXPECT_EQ(a->after.float64_sum, b->after.float64_sum);
  EXPECT_EQ(engine_->WeightsChecksum()->content_hash, a->after.content_hash);
  // Other weights, their own version; a refused perturbation changes none.
  EXPECT_EQ(a->version, 1u);
  EXPECT_EQ(engine_->Stats().weight_version, 1u);
  EXPECT_FALSE(engine_->PerturbWeights(7, -1.0, 4).ok());
  EXPECT_EQ(engine_->Stats().weight_version, 1u);
  EXPECT_EQ(engine_->WeightsChecksum()->content_hash, a->after.content_hash);
  // An update must now be newer than the perturbed version.
  EXPECT_FALSE(
      engine_->UpdateParams(HandBuiltUpdate(checkpoint_->weights, 1)).ok());
  EXPECT_TRUE(
      engine_->UpdateParams(HandBuiltUpdate(checkpoint_->weights, 2)).ok());
}

}  // namespace
}  // namespace rlrt
