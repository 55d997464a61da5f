// LoRA on both passes beyond the PyTorch numbers: PEFT's initialisation
// leaves the base's bits, rows of one batch with different adapters (or
// none) get exactly what they get alone, on float32 and BF16 bases,
// gradients do not depend on the worker count, training moves only the
// adapter, and misuse is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "models/forward/forward_test_util.h"
#include "models/forward/transformer.h"
#include "models/leaf_checksum.h"
#include "models/lora/peft_io.h"
#include "models/ops/log_softmax.h"
#include "models/ops/op_test_util.h"
#include "models/test_util.h"
#include "models/train/losses.h"
#include "models/train/train_test_util.h"

namespace rlrt {
namespace {

// The fixture's model; under "model_bf16" with BF16 matrices, as a BF16
// base runs.
LoadedCheckpoint LoadBase(const std::string& dir) {
  const bool bf16 = dir.ends_with("model_bf16");
  auto checkpoint = LoadCheckpoint(testing::FixtureDir(dir), nullptr,
                                   bf16 ? DType::kBF16 : DType::kF32);
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
  return std::move(checkpoint).value();
}

std::unique_ptr<LoraAdapter> LoadAdapter(const std::string& dir,
                                         const ModelConfig& config) {
  auto adapter = LoadPeftAdapter(testing::FixtureDir(dir), config);
  EXPECT_TRUE(adapter.ok()) << adapter.status();
  return adapter.ok() ? std::move(adapter).value() : nullptr;
}

uint64_t Hash(const ParamLeaves& leaves) {
  return ContentHash(
      leaves, [&](size_t i) { return leaves.data(i); }, nullptr);
}

std::vector<float> Logits(Transformer& model, const std::vector<int32_t>& ids,
                          const LoraAdapter* adapter) {
  return testing::SequenceLogits(model, ids, false, 4, adapter);
}

TEST(LoraTrainingTest, PeftInitialisedAdapterGivesTheBaseBitForBit) {
  const LoadedCheckpoint m = testing::LoadFixture("qwen3_tied");
  auto adapter = LoraAdapter::Create(m.config, LoraConfig{});
  ASSERT_TRUE(adapter.ok());
  ASSERT_TRUE((*adapter)->InitLikePeft(1).ok());
  TransformerOptions options;
  options.max_lora_rank = 16;
  auto sampler = Transformer::Create(m.config, m.leaves, nullptr, options);
  ASSERT_TRUE(sampler.ok());
  const std::vector<int32_t> ids = {5, 9, 14, 33, 2, 71};
  EXPECT_TRUE(testing::SameBits(Logits(**sampler, ids, adapter->get()),
                                Logits(**sampler, ids, nullptr)));
}

// Sequences with adapter 1, none, adapter 2, adapter 1, in one prefill and
// then one decode step each, against each run alone.
void ExpectMixedBatchEqualsAlone(const std::string& base_dir,
                                 const std::string& adapter_base) {
  const LoadedCheckpoint m = LoadBase(base_dir);
  auto one = LoadAdapter(adapter_base + "/lora_all7", m.config);
  auto two = LoadAdapter(adapter_base + "/lora_qv_rs", m.config);
  ASSERT_TRUE(one && two);
  auto mesh = testing::MakeMesh(2);
  TransformerOptions options;
  options.max_lora_rank = 4;
  auto sampler = Transformer::Create(m.config, m.leaves, mesh.get(), options);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  const int64_t vocab = m.config.vocab_size;
  const std::vector<std::vector<int32_t>> prompts = {
      {4, 8, 15, 16, 23}, {42, 7}, {1, 2, 3, 5, 8, 13, 21}, {60, 61, 62}};
  const std::vector<const LoraAdapter*> adapters = {one.get(), nullptr,
                                                    two.get(), one.get()};
  const std::vector<int32_t> next = {11, 12, 13, 14};
  // Alone: prompt + next token, token by token.
  std::vector<std::vector<float>> alone;
  for (size_t s = 0; s < prompts.size(); ++s) {
    std::vector<int32_t> ids = prompts[s];
    ids.push_back(next[s]);
    alone.push_back(
        testing::SequenceLogits(**sampler, ids, true, 4, adapters[s]));
  }
  // Together: one prefill call for all prompts, one decode call.
  const int64_t page_size = 4;
  auto cache = KvCache::Create(
      KvCacheShape::For(m.config, 64, page_size, (*sampler)->kv_dtype()));
  ASSERT_TRUE(cache.ok());
  PagePool pool((*cache)->shape().num_pages);
  std::vector<std::vector<int32_t>> pages(prompts.size());
  std::vector<SequenceInput> batch;
  for (size_t s = 0; s < prompts.size(); ++s) {
    ASSERT_TRUE(pool.Allocate(3, &pages[s]).ok());
    batch.push_back({prompts[s], 0, pages[s], false, adapters[s]});
  }
  std::vector<float> logits(prompts.size() * vocab);
  ASSERT_TRUE((*sampler)->Forward(batch, **cache, logits).ok());
  for (size_t s = 0; s < prompts.size(); ++s) {
    const int64_t last = static_cast<int64_t>(prompts[s].size()) - 1;
    EXPECT_EQ(0, std::memcmp(&logits[s * vocab], &alone[s][last * vocab],
                             vocab * sizeof(float)))
        << base_dir << " prefill, sequence " << s;
    batch[s] = {{&next[s], 1}, last + 1, pages[s], false, adapters[s]};
  }
  ASSERT_TRUE((*sampler)->Forward(batch, **cache, logits).ok());
  for (size_t s = 0; s < prompts.size(); ++s) {
    const int64_t at = static_cast<int64_t>(prompts[s].size());
    EXPECT_EQ(0, std::memcmp(&logits[s * vocab], &alone[s][at * vocab],
                             vocab * sizeof(float)))
        << base_dir << " decode, sequence " << s;
  }
  // And the adapters did change something.
  EXPECT_FALSE(testing::SameBits(
      testing::SequenceLogits(**sampler, prompts[0], false, 4, one.get()),
      testing::SequenceLogits(**sampler, prompts[0], false, 4, nullptr)));
}

TEST(LoraTrainingTest, MixedAdapterBatchEqualsEachSequenceAloneFloat32) {
  ExpectMixedBatchEqualsAlone("qwen3_tied", "qwen3_tied");
}

TEST(LoraTrainingTest, MixedAdapterBatchEqualsEachSequenceAloneBf16Base) {
  ExpectMixedBatchEqualsAlone("qwen3_tied/model_bf16", "qwen3_tied");
}

TEST(LoraTrainingTest, Bf16BaseSamplerAndTrainerAgreeBitForBit) {
  const LoadedCheckpoint m = LoadBase("llama/model_bf16");
  ASSERT_EQ(DecoderMatrixDType(m.leaves.specs()), DType::kBF16);
  auto adapter = LoadAdapter("llama/lora_all7", m.config);
  ASSERT_TRUE(adapter);
  TransformerOptions sampler_options;
  sampler_options.max_lora_rank = 4;
  auto sampler =
      Transformer::Create(m.config, m.leaves, nullptr, sampler_options);
  ASSERT_TRUE(sampler.ok());
  TrainableTransformerOptions options;
  options.adapter = adapter.get();
  auto mesh = testing::MakeMesh(2);
  auto trainable =
      testing::MakeTrainable(m.config, m.leaves, mesh.get(), options);
  ASSERT_TRUE(trainable);
  const std::vector<int32_t> ids = {3, 30, 31, 9, 77, 2, 50};
  const testing::OwnedBatch batch = testing::AllPositions({ids});
  const int64_t vocab = m.config.vocab_size;
  std::vector<float> logprobs(batch.num_targets()),
      logits(batch.num_targets() * vocab);
  ASSERT_TRUE(trainable->Forward(batch.sequences, 0.7f, logprobs, logits).ok());
  const std::vector<float> decode =
      testing::SequenceLogits(**sampler, ids, true, 4, adapter.get());
  std::vector<float> z(vocab);
  for (size_t t = 0; t + 1 < ids.size(); ++t) {
    EXPECT_EQ(0, std::memcmp(&logits[t * vocab], &decode[t * vocab],
                             vocab * sizeof(float)))
        << t;
    TemperLogits(&decode[t * vocab], vocab, 0.7f, z.data());
    EXPECT_EQ(logprobs[t], TokenLogprob(z.data(), vocab, ids[t + 1])) << t;
  }
}

TEST(LoraTrainingTest, AdapterGradientsAreBitIdenticalForAnyWorkerCount) {
  const LoadedCheckpoint m = testing::LoadFixture("qwen3_tied");
  auto adapter = LoadAdapter("qwen3_tied/lora_all7", m.config);
  ASSERT_TRUE(adapter);
  const testing::OwnedBatch batch =
      testing::AllPositions({{1, 5, 9, 13, 17, 21}, {2, 4, 8, 16, 32}});
  std::vector<float> weights(batch.num_targets());
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = 0.5f - 0.1f * i;
  testing::ExpectSameBitsForAnyWorkerCount([&](Mesh* mesh) {
    TrainableTransformerOptions options;
    options.adapter = adapter.get();
    auto model = testing::MakeTrainable(m.config, m.leaves, mesh, options);
    auto grads = ParamLeaves::Allocate(adapter->leaves().specs());
    EXPECT_TRUE(grads.ok());
    testing::WeightedLoss(*model, batch, 0.8f, weights, &*grads);
    std::vector<float> all;
    for (size_t i = 0; i < grads->size(); ++i) {
      all.insert(all.end(), grads->F32(i).begin(), grads->F32(i).end());
    }
    return all;
  });
}

TEST(LoraTrainingTest, TrainingTheAdapterLowersTheLossAndLeavesTheBase) {
  LoadedCheckpoint m = testing::LoadFixture("llama");
  LoraConfig config;
  config.rank = 4;
  config.alpha = 8;
  auto adapter = LoraAdapter::Create(m.config, config);
  ASSERT_TRUE(adapter.ok());
  ASSERT_TRUE((*adapter)->InitLikePeft(5).ok());
  const uint64_t base_hash = Hash(m.leaves);
  TrainableTransformerOptions options;
  options.adapter = adapter->get();
  auto model = testing::MakeTrainable(m.config, m.leaves, nullptr, options);
  ASSERT_TRUE(model);
  const testing::OwnedBatch batch =
      testing::AllPositions({{7, 14, 21, 28, 35, 42, 49, 56, 63}});
  std::vector<float> logprobs(batch.num_targets()), dloss(batch.num_targets());
  auto grads = ParamLeaves::Allocate((*adapter)->leaves().specs());
  ASSERT_TRUE(grads.ok());
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    ASSERT_TRUE(model->Forward(batch.sequences, 1.0f, logprobs).ok());
    const double loss = *CrossEntropyLoss(logprobs, dloss);
    if (step == 0) first = loss;
    last = loss;
    for (size_t i = 0; i < grads->size(); ++i) {
      std::fill(grads->F32(i).begin(), grads->F32(i).end(), 0.0f);
    }
    ASSERT_TRUE(model->Backward(dloss, *grads).ok());
    ParamLeaves& w = (*adapter)->leaves();
    for (size_t i = 0; i < w.size(); ++i) {
      for (size_t j = 0; j < w.F32(i).size(); ++j) {
        w.F32(i)[j] -= 0.05f * grads->F32(i)[j];
      }
    }
    w.set_version(w.version() + 1);
  }
  EXPECT_LT(last, 0.5 * first) << first << " -> " << last;
  EXPECT_EQ(Hash(m.leaves), base_hash) << "the base must stay frozen";
}

TEST(LoraTrainingTest, MisuseIsRefused) {
  const LoadedCheckpoint m = testing::LoadFixture("qwen3_tied");
  const LoadedCheckpoint other = testing::LoadFixture("llama");
  auto adapter = LoadAdapter("qwen3_tied/lora_all7", m.config);
  auto foreign = LoadAdapter("llama/lora_all7", other.config);
  ASSERT_TRUE(adapter && foreign);
  // Sampler: rank over max_lora_rank, adapter of another base.
  TransformerOptions options;
  options.max_lora_rank = 2;
  auto sampler = Transformer::Create(m.config, m.leaves, nullptr, options);
  ASSERT_TRUE(sampler.ok());
  auto cache = KvCache::Create(
      KvCacheShape::For(m.config, 8, 4, (*sampler)->kv_dtype()));
  ASSERT_TRUE(cache.ok());
  const std::vector<int32_t> ids = {1, 2, 3}, pages = {0};
  std::vector<float> logits(m.config.vocab_size);
  SequenceInput in{ids, 0, pages, false, adapter.get()};
  EXPECT_FALSE((*sampler)->Forward({&in, 1}, **cache, logits).ok());
  in.adapter = foreign.get();
  EXPECT_FALSE((*sampler)->Forward({&in, 1}, **cache, logits).ok());

  // Trainer: capacity, foreign adapter, gradients of the wrong structure,
  // an adapter that changed since Forward.
  TrainableTransformerOptions train_options;
  train_options.max_lora_rank = 2;
  auto model =
      testing::MakeTrainable(m.config, m.leaves, nullptr, train_options);
  ASSERT_TRUE(model);
  EXPECT_FALSE(model->SetAdapter(adapter.get()).ok());
  train_options.max_lora_rank = 4;
  model = testing::MakeTrainable(m.config, m.leaves, nullptr, train_options);
  EXPECT_FALSE(model->SetAdapter(foreign.get()).ok());
  ASSERT_TRUE(model->SetAdapter(adapter.get()).ok());
  const testing::OwnedBatch batch = testing::AllPositions({{1, 2, 3, 4}});
  std::vector<float> logprobs(batch.num_targets());
  const std::vector<float> dloss(batch.num_targets(), 1.0f);
  ASSERT_TRUE(model->Forward(batch.sequences, 1.0f, logprobs).ok());
  ParamLeaves base_grads = testing::ZeroGradients(m.config);
  EXPECT_FALSE(model->Backward(dloss, base_grads).ok());
  EXPECT_FALSE(model->Backward(dloss, adapter->leaves()).ok());
  auto grads = ParamLeaves::Allocate(adapter->leaves().specs());
  ASSERT_TRUE(grads.ok());
  adapter->leaves().set_version(adapter->leaves().version() + 1);
  EXPECT_FALSE(model->Backward(dloss, *grads).ok());
  ASSERT_TRUE(model->Forward(batch.sequences, 1.0f, logprobs).ok());
  EXPECT_TRUE(model->Backward(dloss, *grads).ok());
  // Without the adapter the same model is the base again, full gradients.
  ASSERT_TRUE(model->SetAdapter(nullptr).ok());
  ASSERT_TRUE(model->Forward(batch.sequences, 1.0f, logprobs).ok());
  EXPECT_TRUE(model->Backward(dloss, base_grads).ok());
}

}  // namespace
}  // namespace rlrt
