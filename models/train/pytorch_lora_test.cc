// LoRA against PyTorch (tests/reference/gen_lora_fixtures.py, float64): for
// the tiny Qwen3 (tied) and Llama bases, two PEFT adapters each (r 4 on all
// seven projections; r 2 on q and v with rsLoRA). The sampler's logits and
// the trainer's logprobs with the adapter against PyTorch's, the trainer's
// dLoss/dA and dLoss/dB (base frozen) against autograd, and the sampler's
// and the trainer's numbers against each other, bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <tuple>

#include "models/forward/forward_test_util.h"
#include "models/forward/transformer.h"
#include "models/io/safetensors.h"
#include "models/lora/lora_merge.h"
#include "models/lora/peft_io.h"
#include "models/ops/log_softmax.h"
#include "models/ops/op_test_util.h"
#include "models/test_util.h"
#include "models/train/losses.h"
#include "models/train/train_test_util.h"

namespace rlrt {
namespace {

using nlohmann::json;

struct Adapted {
  LoadedCheckpoint base;
  std::unique_ptr<LoraAdapter> adapter;
  json expected;
};

Adapted Load(const std::string& base, const std::string& adapter) {
  Adapted a{testing::LoadFixture(base), nullptr, {}};
  const std::string dir = testing::FixtureDir(base + "/" + adapter);
  auto loaded = LoadPeftAdapter(dir, a.base.config);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (loaded.ok()) a.adapter = std::move(loaded).value();
  a.expected = testing::ReadJsonFile(dir + "/expected.json");
  return a;
}

std::unique_ptr<Transformer> MakeSampler(const Adapted& a, Mesh* mesh,
                                         int64_t max_lora_rank) {
  TransformerOptions options;
  options.max_lora_rank = max_lora_rank;
  auto sampler =
      Transformer::Create(a.base.config, a.base.leaves, mesh, options);
  EXPECT_TRUE(sampler.ok()) << sampler.status();
  return sampler.ok() ? std::move(sampler).value() : nullptr;
}

class PyTorchLoraTest
    : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  std::string Name() const {
    return std::get<0>(GetParam()) + "/" + std::get<1>(GetParam());
  }
};

TEST_P(PyTorchLoraTest, SamplerLogitsAndTrainerLogprobsMatchPyTorch) {
  const Adapted a = Load(std::get<0>(GetParam()), std::get<1>(GetParam()));
  ASSERT_TRUE(a.adapter);
  const int64_t vocab = a.base.config.vocab_size;
  auto mesh = testing::MakeMesh(2);
  auto sampler = MakeSampler(a, mesh.get(), a.adapter->rank());
  ASSERT_TRUE(sampler);
  TrainableTransformerOptions options;
  options.adapter = a.adapter.get();
  auto train_mesh = testing::MakeMesh(3);
  auto trainable = testing::MakeTrainable(a.base.config, a.base.leaves,
                                          train_mesh.get(), options);
  ASSERT_TRUE(trainable);
  double worst = 0;
  for (const json& c : a.expected["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const auto want = c["logits"].get<std::vector<std::vector<double>>>();
    const std::vector<float> prefill =
        testing::SequenceLogits(*sampler, ids, false, 4, a.adapter.get());
    const std::vector<float> decode =
        testing::SequenceLogits(*sampler, ids, true, 4, a.adapter.get());
    for (size_t t = 0; t < ids.size(); ++t) {
      for (int64_t v = 0; v < vocab; ++v) {
        const double diff = std::fabs(prefill[t * vocab + v] - want[t][v]);
        worst = std::max(worst, diff);
        EXPECT_LE(diff, 1e-4) << Name() << " position " << t << " id " << v;
      }
    }
    EXPECT_TRUE(testing::SameBits(prefill, decode)) << Name();
    if (ids.size() < 2) continue;
    // The trainer: logprobs against PyTorch, logits against the sampler's.
    const testing::OwnedBatch batch = testing::AllPositions({ids});
    std::vector<float> logprobs(batch.num_targets());
    std::vector<float> logits(batch.num_targets() * vocab);
    ASSERT_TRUE(
        trainable->Forward(batch.sequences, 1.0f, logprobs, logits).ok());
    const auto want_logprobs =
        c["next_token_logprobs"].get<std::vector<double>>();
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
      EXPECT_NEAR(logprobs[t], want_logprobs[t], 1e-5) << Name() << " " << t;
      EXPECT_EQ(0, std::memcmp(&logits[t * vocab], &prefill[t * vocab],
                               vocab * sizeof(float)))
          << Name() << " position " << t;
    }
  }
  std::printf("%s: largest logit error against PyTorch %.2e\n", Name().c_str(),
              worst);
}

TEST_P(PyTorchLoraTest, AdapterGradientsMatchAutogradWithTheBaseFrozen) {
  const Adapted a = Load(std::get<0>(GetParam()), std::get<1>(GetParam()));
  ASSERT_TRUE(a.adapter);
  const std::string base = std::get<0>(GetParam());
  const json fixture =
      testing::ReadJsonFile(testing::FixtureDir(base) + "/gradients.json");
  auto reference = SafetensorsFile::Open(testing::FixtureDir(Name()) +
                                         "/gradients.safetensors");
  ASSERT_TRUE(reference.ok()) << reference.status();
  const testing::OwnedBatch batch = testing::BatchFromJson(fixture);
  auto mesh = testing::MakeMesh(2);
  TrainableTransformerOptions options;
  options.adapter = a.adapter.get();
  auto trainable =
      testing::MakeTrainable(a.base.config, a.base.leaves, mesh.get(), options);
  ASSERT_TRUE(trainable);
  for (const json& want : a.expected["gradient_cases"]) {
    const std::string case_name = want["name"];
    const json* c = nullptr;
    for (const json& candidate : fixture["cases"]) {
      if (candidate["name"] == case_name) c = &candidate;
    }
    ASSERT_NE(c, nullptr) << case_name;
    const float temperature = (*c)["temperature"].get<float>();
    std::vector<float> logprobs(batch.num_targets());
    ASSERT_TRUE(
        trainable->Forward(batch.sequences, temperature, logprobs).ok());
    const auto want_logprobs = want["logprobs"].get<std::vector<double>>();
    ASSERT_EQ(want_logprobs.size(), logprobs.size());
    for (size_t i = 0; i < logprobs.size(); ++i) {
      EXPECT_NEAR(logprobs[i], want_logprobs[i], 1e-5) << case_name << " " << i;
    }
    std::vector<float> dloss = (*c)["dloss_dlogprob"].get<std::vector<float>>();
    double loss = 0;
    if (case_name == "cross_entropy") {
      StatusOr<double> ce = CrossEntropyLoss(logprobs, dloss);
      ASSERT_TRUE(ce.ok());
      loss = *ce;
    } else {
      for (size_t i = 0; i < logprobs.size(); ++i)
        loss += dloss[i] * logprobs[i];
    }
    EXPECT_NEAR(loss, want["loss"].get<double>(), 1e-4) << case_name;

    auto grads = ParamLeaves::Allocate(a.adapter->leaves().specs());
    ASSERT_TRUE(grads.ok());
    ASSERT_TRUE(trainable->Backward(dloss, *grads).ok());
    double worst = 0;
    for (const auto& [leaf, e] :
         testing::CompareGradients(*grads, *reference, case_name)) {
      worst = std::max(worst, e.relative());
      EXPECT_LE(e.relative(), 1e-4)
          << Name() << " " << case_name << " " << leaf;
    }
    std::printf("%s %s: worst relative adapter gradient error %.2e\n",
                Name().c_str(), case_name.c_str(), worst);
  }
}

TEST_P(PyTorchLoraTest, UnmergedEqualsMergedWithinRounding) {
  Adapted a = Load(std::get<0>(GetParam()), std::get<1>(GetParam()));
  ASSERT_TRUE(a.adapter);
  auto sampler = MakeSampler(a, nullptr, a.adapter->rank());
  ASSERT_TRUE(sampler);
  LoadedCheckpoint merged = testing::LoadFixture(std::get<0>(GetParam()));
  ASSERT_TRUE(MergeLoraInto(*a.adapter, merged.config, merged.leaves).ok());
  auto merged_sampler =
      Transformer::Create(merged.config, merged.leaves, nullptr, {});
  ASSERT_TRUE(merged_sampler.ok());
  const std::vector<int32_t> ids = {3, 17, 42, 8, 61, 29, 5};
  const std::vector<float> unmerged =
      testing::SequenceLogits(*sampler, ids, false, 4, a.adapter.get());
  const std::vector<float> folded =
      testing::SequenceLogits(**merged_sampler, ids, false);
  EXPECT_LE(testing::MaxAbsDiff(unmerged, folded), 2e-5);
  EXPECT_GT(testing::MaxAbsDiff(unmerged,
                                testing::SequenceLogits(*sampler, ids, false)),
            1e-2)
      << "the adapter should move the logits";
}

INSTANTIATE_TEST_SUITE_P(
    Adapters, PyTorchLoraTest,
    ::testing::Combine(::testing::Values("qwen3_tied", "llama"),
                       ::testing::Values("lora_all7", "lora_qv_rs")),
    [](const auto& info) {
      return std::get<0>(info.param) + "_" + std::get<1>(info.param);
    });

}  // namespace
}  // namespace rlrt
