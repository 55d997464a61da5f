// The training forward against the sampler's (bit for bit), gradients across
// worker counts (bit for bit), and input validation.
#include "models/train/trainable_transformer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>

#include "models/forward/dummy_weights.h"
#include "models/forward/forward_test_util.h"
#include "models/leaf_copy.h"
#include "models/ops/log_softmax.h"
#include "models/test_util.h"
#include "models/train/train_test_util.h"

namespace rlrt {
namespace {

using nlohmann::json;
using testing::OwnedBatch;

// A model under test: the tiny PyTorch fixtures, or SmallQwen3 with dummy
// weights ("small_qwen3").
struct Model {
  ModelConfig config;
  std::unique_ptr<ParamLeaves> weights;
  std::vector<std::vector<int32_t>> sequences;
  std::optional<DType> kv_dtype;  // Unset: follows the weights.
};

std::vector<int32_t> RandomTokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % vocab);
  return ids;
}

Model LoadF32Model(const std::string& name);

// "<name>:bf16" is model <name> with its matrices rounded to BF16 (and so
// a BF16 KV cache); "<name>:kv_bf16" keeps float32 weights with a BF16 KV
// cache.
Model LoadModel(const std::string& name) {
  const size_t colon = name.find(':');
  if (colon == std::string::npos) return LoadF32Model(name);
  Model m = LoadF32Model(name.substr(0, colon));
  if (name.substr(colon + 1) == "kv_bf16") {
    m.kv_dtype = DType::kBF16;
    return m;
  }
  auto bf16 = ParamLeaves::Allocate(LeafSpecsFor(m.config, DType::kBF16));
  EXPECT_TRUE(bf16.ok());
  EXPECT_TRUE(ConvertLeaves(*m.weights, *bf16, nullptr).ok());
  m.weights = std::make_unique<ParamLeaves>(std::move(bf16).value());
  return m;
}

Model LoadF32Model(const std::string& name) {
  Model m;
  if (name == "small_qwen3" || name == "small_qwen3_3_layers") {
    m.config = testing::SmallQwen3();
    if (name == "small_qwen3_3_layers") m.config.num_hidden_layers = 3;
    auto w = ParamLeaves::Allocate(LeafSpecsFor(m.config));
    EXPECT_TRUE(w.ok());
    m.weights = std::make_unique<ParamLeaves>(std::move(w).value());
    EXPECT_TRUE(InitDummyWeights(*m.weights, 5, nullptr).ok());
    for (int64_t n : {5, 40, 1, 17})
      m.sequences.push_back(RandomTokens(n, m.config.vocab_size, n));
    return m;
  }
  LoadedCheckpoint c = testing::LoadFixture(name);
  m.config = c.config;
  m.weights = std::make_unique<ParamLeaves>(std::move(c.leaves));
  const json expected =
      testing::ReadJsonFile(testing::FixtureDir(name) + "/expected.json");
  for (const json& c : expected["cases"])
    m.sequences.push_back(c["ids"].get<std::vector<int32_t>>());
  return m;
}

bool SameBits(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

class SamplerAgreementTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SamplerAgreementTest, LogitsAndLogprobsEqualTheSamplersBitForBit) {
  const Model m = LoadModel(GetParam());
  const int64_t vocab = m.config.vocab_size;
  auto sampler_mesh = testing::MakeMesh(2);
  TransformerOptions sampler_options;
  sampler_options.kv_dtype = m.kv_dtype;
  auto sampler = Transformer::Create(m.config, *m.weights, sampler_mesh.get(),
                                     sampler_options);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  // A different worker count and a small logits chunk on the training side.
  auto train_mesh = testing::MakeMesh(3);
  TrainableTransformerOptions train_options{256, 5};
  train_options.kv_dtype = m.kv_dtype;
  auto trainable = testing::MakeTrainable(m.config, *m.weights,
                                          train_mesh.get(), train_options);
  ASSERT_TRUE(trainable);
  const OwnedBatch batch = testing::AllPositions(m.sequences);
  const int64_t n = batch.num_targets();
  for (float temperature : {1.0f, 0.7f}) {
    std::vector<float> logprobs(n), logits(n * vocab);
    ASSERT_TRUE(
        trainable->Forward(batch.sequences, temperature, logprobs, logits)
            .ok());
    int64_t row = 0;
    std::vector<float> z(vocab);
    for (const auto& ids : m.sequences) {
      const std::vector<float> prefill =
          testing::SequenceLogits(**sampler, ids, false);
      const std::vector<float> decode =
          testing::SequenceLogits(**sampler, ids, true);
      for (size_t t = 0; t + 1 < ids.size(); ++t, ++row) {
        const float* ours = &logits[row * vocab];
        EXPECT_TRUE(SameBits(ours, &prefill[t * vocab], vocab)) << t;
        EXPECT_TRUE(SameBits(ours, &decode[t * vocab], vocab)) << t;
        // The sampler's temperature-only logprob of the next token.
        TemperLogits(&decode[t * vocab], vocab, temperature, z.data());
        const float sampler_logprob = TokenLogprob(z.data(), vocab, ids[t + 1]);
        EXPECT_EQ(logprobs[row], sampler_logprob) << t;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, SamplerAgreementTest,
                         ::testing::Values("qwen3_tied", "qwen3_untied",
                                           "qwen2", "llama", "small_qwen3",
                                           "qwen3_tied:bf16", "qwen2:bf16",
                                           "small_qwen3:bf16", "llama:kv_bf16"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), ':', '_');
                           return name;
                         });

// All gradient leaves, concatenated.
std::vector<float> Flatten(const ParamLeaves& grads) {
  std::vector<float> all;
  for (size_t i = 0; i < grads.size(); ++i) {
    const auto leaf = grads.F32(i);
    all.insert(all.end(), leaf.begin(), leaf.end());
  }
  return all;
}

std::vector<float> RandomWeights(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> w(n);
  for (float& x : w) x = normal(rng);
  return w;
}

TEST(TrainableTransformerTest, GradientsAreBitIdenticalForAnyWorkerCount) {
  for (const char* name :
       {"small_qwen3", "qwen2", "small_qwen3:bf16", "qwen2:bf16"}) {
    const Model m = LoadModel(name);
    auto by_length = m.sequences;
    std::sort(by_length.begin(), by_length.end(),
              [](const auto& a, const auto& b) { return a.size() > b.size(); });
    OwnedBatch batch;  // Sparse targets, and a sequence without any.
    batch.Add(by_length[0], {0, 2, 3});
    batch.Add(by_length.back(), {});
    batch.Add(by_length[1], {1, 4, 5});
    const std::vector<float> w = RandomWeights(batch.num_targets(), 3);
    std::vector<float> first;
    for (int workers : {0, 1, 2, 3}) {
      auto mesh = workers > 0 ? testing::MakeMesh(workers) : nullptr;
      auto model = testing::MakeTrainable(m.config, *m.weights, mesh.get());
      ParamLeaves grads = testing::ZeroGradients(m.config);
      testing::WeightedLoss(*model, batch, 0.7f, w, &grads);
      const std::vector<float> all = Flatten(grads);
      if (first.empty()) first = all;
      EXPECT_TRUE(SameBits(all.data(), first.data(), all.size()))
          << name << ", " << workers << " workers";
    }
  }
}

TEST(TrainableTransformerTest, BackwardAccumulatesAndRepeats) {
  const Model m = LoadModel("qwen3_tied");
  const OwnedBatch batch = testing::AllPositions(m.sequences);
  const std::vector<float> w = RandomWeights(batch.num_targets(), 4);
  auto model = testing::MakeTrainable(m.config, *m.weights, nullptr);
  ParamLeaves once = testing::ZeroGradients(m.config);
  testing::WeightedLoss(*model, batch, 1.0f, w, &once);
  // Backward runs again on the same Forward and adds the same gradients.
  ParamLeaves twice = testing::ZeroGradients(m.config);
  ASSERT_TRUE(model->Backward(w, twice).ok());
  ASSERT_TRUE(model->Backward(w, twice).ok());
  const std::vector<float> a = Flatten(once), b = Flatten(twice);
  double scale = 0;
  for (float x : a) scale = std::max(scale, std::fabs(double(x)));
  ASSERT_GT(scale, 0);
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(b[i], 2 * a[i], 1e-6 * scale) << i;
}

TEST(TrainableTransformerTest, ChunkingTheLogitsChangesOnlyRounding) {
  const Model m = LoadModel("qwen3_untied");
  const OwnedBatch batch = testing::AllPositions(m.sequences);
  const std::vector<float> w = RandomWeights(batch.num_targets(), 5);
  std::vector<std::vector<float>> results;
  for (int64_t chunk : {1, 4, 64}) {
    auto model =
        testing::MakeTrainable(m.config, *m.weights, nullptr, {64, chunk});
    ParamLeaves grads = testing::ZeroGradients(m.config);
    testing::WeightedLoss(*model, batch, 1.0f, w, &grads);
    results.push_back(Flatten(grads));
  }
  double scale = 0;
  for (float x : results[0]) scale = std::max(scale, std::fabs(double(x)));
  for (size_t r = 1; r < results.size(); ++r) {
    for (size_t i = 0; i < results[0].size(); ++i)
      ASSERT_NEAR(results[r][i], results[0][i], 1e-6 * scale) << i;
  }
}

// A released workspace (a model idle between steps) costs the next pass
// nothing but page faults: the same logprobs and gradients bit for bit, and
// Backward needs a Forward after it.
TEST(TrainableTransformerTest, ReleasedWorkspaceScoresAndTrainsTheSame) {
  for (const char* name : {"small_qwen3", "small_qwen3:bf16"}) {
    const Model m = LoadModel(name);
    const OwnedBatch batch = testing::AllPositions(m.sequences);
    const int64_t n = batch.num_targets();
    const std::vector<float> w = RandomWeights(n, 9);
    auto model = testing::MakeTrainable(m.config, *m.weights, nullptr, {64, 8});
    ASSERT_TRUE(model);
    std::vector<float> logp_before(n), logp_after(n);
    ParamLeaves before = testing::ZeroGradients(m.config);
    ParamLeaves after = testing::ZeroGradients(m.config);
    ASSERT_TRUE(model->Forward(batch.sequences, 0.7f, logp_before).ok());
    ASSERT_TRUE(model->Backward(w, before).ok());
    ASSERT_TRUE(model->ReleaseWorkspace().ok());
    EXPECT_EQ(model->Backward(w, after).code(), StatusCode::kFailedPrecondition)
        << name;
    ASSERT_TRUE(model->Forward(batch.sequences, 0.7f, logp_after).ok());
    ASSERT_TRUE(model->Backward(w, after).ok());
    EXPECT_TRUE(SameBits(logp_after.data(), logp_before.data(), n)) << name;
    const std::vector<float> a = Flatten(before), b = Flatten(after);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_TRUE(SameBits(a.data(), b.data(), a.size())) << name;
  }
}

// A frozen reference scores with a forward-only model: the same logprobs and
// entropies bit for bit (odd and even layer counts, BF16 included), in a
// workspace smaller by the per-layer residuals and the gradients, and
// Backward refused.
TEST(TrainableTransformerTest, ForwardOnlyScoresTheSameInLessMemory) {
  for (const char* name :
       {"small_qwen3", "small_qwen3_3_layers", "qwen2", "small_qwen3:bf16"}) {
    const Model m = LoadModel(name);
    const OwnedBatch batch = testing::AllPositions(m.sequences);
    const int64_t n = batch.num_targets();
    auto mesh = testing::MakeMesh(2);
    TrainableTransformerOptions options{.max_tokens = 64,
                                        .logits_chunk_rows = 8};
    auto full =
        testing::MakeTrainable(m.config, *m.weights, mesh.get(), options);
    options.forward_only = true;
    auto scorer =
        testing::MakeTrainable(m.config, *m.weights, mesh.get(), options);
    ASSERT_TRUE(full && scorer);
    std::vector<float> logp_full(n), logp(n), ent_full(n), ent(n);
    ASSERT_TRUE(
        full->Forward(batch.sequences, 0.7f, logp_full, {}, ent_full).ok());
    ASSERT_TRUE(scorer->Forward(batch.sequences, 0.7f, logp, {}, ent).ok());
    EXPECT_TRUE(SameBits(logp.data(), logp_full.data(), n)) << name;
    EXPECT_TRUE(SameBits(ent.data(), ent_full.data(), n)) << name;

    // What the forward-only workspace leaves out, counted from the config.
    const ModelConfig& c = m.config;
    const int64_t t = options.max_tokens, h = c.hidden_size;
    int64_t saved_floats =
        (c.num_hidden_layers - 1) * t * h +
        t * (2 * h + 2 * c.q_dim() + 2 * c.kv_dim() + c.intermediate_size) +
        2 * options.logits_chunk_rows * h +
        2 /*workers*/ * t;  // attention scratch: t instead of 2t per worker
    // BF16 weights: the float32 scratch of BF16 gradients too (the largest
    // layer matrix, and the LM head's in an arena of its own).
    if (DecoderMatrixDType(m.weights->specs()) == DType::kBF16) {
      saved_floats +=
          std::max({c.q_dim(), c.kv_dim(), c.intermediate_size}) * h +
          c.vocab_size * h;
    }
    const int64_t saved = static_cast<int64_t>(full->workspace_bytes()) -
                          static_cast<int64_t>(scorer->workspace_bytes());
    // Each buffer is rounded up to 64 bytes and each arena to a page.
    EXPECT_NEAR(static_cast<double>(saved), 4.0 * saved_floats,
                2 * 4096 + 64 * 17)
        << name;

    ParamLeaves grads = testing::ZeroGradients(c);
    const std::vector<float> w(n, 1.0f);
    EXPECT_EQ(scorer->Backward(w, grads).code(),
              StatusCode::kFailedPrecondition);
  }
}

class ValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_ = LoadModel("small_qwen3");
    model_ = testing::MakeTrainable(m_.config, *m_.weights, nullptr, {32, 8});
    ASSERT_TRUE(model_);
  }

  Status ForwardOf(const std::vector<int32_t>& ids,
                   const std::vector<int32_t>& targets, float temperature = 1,
                   int64_t logprob_slots = -1) {
    OwnedBatch batch;
    batch.Add(ids, targets);
    std::vector<float> logprobs(logprob_slots >= 0 ? logprob_slots
                                                   : targets.size());
    return model_->Forward(batch.sequences, temperature, logprobs);
  }

  Model m_;
  std::unique_ptr<TrainableTransformer> model_;
};

TEST_F(ValidationTest, RejectsBadBatches) {
  EXPECT_TRUE(ForwardOf({1, 2, 3}, {0, 1}).ok());
  const std::vector<std::pair<Status, std::string>> cases = {
      {ForwardOf({1, 64, 3}, {0}), "outside the vocabulary"},
      {ForwardOf({1, -1, 3}, {0}), "outside the vocabulary"},
      {ForwardOf(std::vector<int32_t>(33, 1), {0}), "exceeds max_tokens"},
      {ForwardOf({1, 2, 3}, {1, 0}), "not increasing"},
      {ForwardOf({1, 2, 3}, {2}), "has no next token"},
      {ForwardOf({1, 2, 3}, {0}, 1.0f, 2), "logprobs holds"},
      {ForwardOf({1, 2, 3}, {0}, 0.0f), "temperature"},
      {ForwardOf({1, 2, 3}, {0}, NAN), "temperature"},
  };
  for (const auto& [status, message] : cases) {
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find(message), std::string::npos) << status;
  }
}

TEST_F(ValidationTest, RejectsSequencesLongerThanThePositions) {
  ModelConfig short_config = m_.config;
  short_config.max_position_embeddings = 4;
  auto model = testing::MakeTrainable(short_config, *m_.weights, nullptr);
  OwnedBatch batch;
  batch.Add({1, 2, 3, 4, 5}, {0});
  std::vector<float> logprobs(1);
  const Status s = model->Forward(batch.sequences, 1.0f, logprobs);
  EXPECT_NE(s.message().find("positions"), std::string::npos) << s;
}

TEST_F(ValidationTest, RejectsBadBackwardCalls) {
  ParamLeaves grads = testing::ZeroGradients(m_.config);
  std::vector<float> dloss = {1.0f, 1.0f};
  EXPECT_EQ(model_->Backward(dloss, grads).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(ForwardOf({1, 2, 3}, {0, 1}).ok());
  EXPECT_EQ(model_->num_targets(), 2);
  EXPECT_TRUE(model_->Backward(dloss, grads).ok());
  std::vector<float> one = {1.0f};
  EXPECT_FALSE(model_->Backward(one, grads).ok());
  std::vector<float> nan = {1.0f, NAN};
  EXPECT_FALSE(model_->Backward(nan, grads).ok());
  // Gradients of another structure.
  ModelConfig other = m_.config;
  other.tie_word_embeddings = true;
  ParamLeaves wrong = testing::ZeroGradients(other);
  const Status s = model_->Backward(dloss, wrong);
  EXPECT_NE(s.message().find("structure"), std::string::npos) << s;
  // The weights as their own gradients.
  EXPECT_FALSE(model_->Backward(dloss, *m_.weights).ok());
  // New weights since Forward.
  ASSERT_TRUE(ForwardOf({1, 2, 3}, {0, 1}).ok());
  m_.weights->set_version(m_.weights->version() + 1);
  EXPECT_EQ(model_->Backward(dloss, grads).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(ForwardOf({1, 2, 3}, {0, 1}).ok());
  EXPECT_TRUE(model_->Backward(dloss, grads).ok());
  // A failed Forward invalidates the last one.
  EXPECT_FALSE(ForwardOf({1, 2, 3}, {2}).ok());
  EXPECT_EQ(model_->num_targets(), 0);
  EXPECT_EQ(model_->Backward(dloss, grads).code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(ValidationTest, CreateRejectsMismatchedWeightsAndOptions) {
  ModelConfig other = m_.config;
  other.hidden_size = 48;
  EXPECT_FALSE(TrainableTransformer::Create(other, *m_.weights, nullptr).ok());
  EXPECT_FALSE(
      TrainableTransformer::Create(m_.config, *m_.weights, nullptr, {0, 8})
          .ok());
  EXPECT_FALSE(
      TrainableTransformer::Create(m_.config, *m_.weights, nullptr, {8, 0})
          .ok());
}

TEST_F(ValidationTest, EmptyBatchesAndSequencesAreFine) {
  OwnedBatch batch;
  batch.Add({}, {});
  batch.Add({7}, {});
  std::vector<float> none;
  ASSERT_TRUE(model_->Forward(batch.sequences, 1.0f, none).ok());
  ParamLeaves grads = testing::ZeroGradients(m_.config);
  ASSERT_TRUE(model_->Backward(none, grads).ok());
  for (float g : Flatten(grads)) ASSERT_EQ(g, 0.0f);
}

}  // namespace
}  // namespace rlrt

namespace rlrt {
namespace {

// A sampler that never draws ids past the tokenizer's vocabulary normalises
// over fewer ids than the embedding has; sample_vocab makes the trainer do
// the same, and gives the rows it leaves out no gradient.
TEST(TrainableTransformerTest, SampleVocabNormalisesOverTheFirstIdsOnly) {
  const Model m = LoadModel("qwen3_untied");
  constexpr int64_t kSampled = 80;
  const int64_t vocab = m.config.vocab_size;
  ASSERT_GT(vocab, kSampled);
  std::vector<std::vector<int32_t>> sequences = m.sequences;
  for (auto& ids : sequences)
    for (int32_t& id : ids) id %= kSampled;
  const OwnedBatch batch = testing::AllPositions(sequences);
  TrainableTransformerOptions options;
  options.sample_vocab = kSampled;
  auto model = testing::MakeTrainable(m.config, *m.weights, nullptr, options);
  ASSERT_TRUE(model);
  const float temperature = 0.7f;
  std::vector<float> logprobs(batch.num_targets());
  std::vector<float> logits(batch.num_targets() * vocab);
  ASSERT_TRUE(
      model->Forward(batch.sequences, temperature, logprobs, logits).ok());
  // Reference: log-softmax over the first kSampled logits, in double.
  int64_t row = 0;
  for (size_t s = 0; s < sequences.size(); ++s) {
    for (size_t t = 0; t + 1 < sequences[s].size(); ++t, ++row) {
      const float* z = &logits[row * vocab];
      double max = -1e300, sum = 0;
      for (int64_t v = 0; v < kSampled; ++v)
        max = std::max(max, double(z[v]) / temperature);
      for (int64_t v = 0; v < kSampled; ++v)
        sum += std::exp(double(z[v]) / temperature - max);
      const double expected =
          double(z[sequences[s][t + 1]]) / temperature - max - std::log(sum);
      ASSERT_NEAR(logprobs[row], expected, 1e-5) << row;
    }
  }
  const std::vector<float> w = RandomWeights(batch.num_targets(), 9);
  ParamLeaves grads = testing::ZeroGradients(m.config);
  ASSERT_TRUE(model->Backward(w, grads).ok());
  const size_t head = grads.Find("lm_head.weight").value();
  const float* g = reinterpret_cast<const float*>(grads.data(head));
  const int64_t hidden = m.config.hidden_size;
  double kept = 0;
  for (int64_t i = 0; i < kSampled * hidden; ++i) kept += std::fabs(g[i]);
  EXPECT_GT(kept, 0);
  for (int64_t i = kSampled * hidden; i < vocab * hidden; ++i)
    ASSERT_EQ(g[i], 0.0f) << "padding row " << i / hidden;
  // Ids past sample_vocab cannot be scored.
  OwnedBatch outside;
  outside.Add({1, 2, static_cast<int32_t>(kSampled)}, {0, 1});
  std::vector<float> two(2);
  EXPECT_FALSE(model->Forward(outside.sequences, 1.0f, two).ok());
  options.sample_vocab = vocab + 1;
  EXPECT_FALSE(
      TrainableTransformer::Create(m.config, *m.weights, nullptr, options)
          .ok());
}

}  // namespace
}  // namespace rlrt
