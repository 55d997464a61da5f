// The promise that makes rollouts on-policy: for the same weights and
// tokens, the logprob the sampler reports equals the one the trainer
// computes, so the importance ratio is exactly 1 before any update.
#include <gtest/gtest.h>

#include "models/train/trainable_transformer.h"
#include "sampler/engine.h"
#include "sampler/engine_test_util.h"

namespace rlrt {
namespace {

struct Scored {
  std::vector<float> logprobs;
  std::vector<float> logits;
};

Scored TrainerLogprobs(const GenerateResult& r, float temperature, Mesh* mesh) {
  const LoadedModel loaded = testing::LoadStories();
  auto model =
      TrainableTransformer::Create(loaded.config, loaded.weights, mesh);
  EXPECT_TRUE(model.ok()) << model.status();
  std::vector<int32_t> tokens = r.prompt_ids;
  const SampleOutput& out = r.samples[0];
  tokens.insert(tokens.end(), out.token_ids.begin(), out.token_ids.end());
  std::vector<int32_t> targets;
  for (size_t t = r.prompt_ids.size() - 1; t + 1 < tokens.size(); ++t)
    targets.push_back(static_cast<int32_t>(t));
  TrainSequence seq{tokens, targets};
  Scored s;
  s.logprobs.resize(targets.size());
  s.logits.resize(targets.size() * loaded.config.vocab_size);
  Status st = (*model)->Forward({&seq, 1}, temperature, s.logprobs, s.logits);
  EXPECT_TRUE(st.ok()) << st;
  return s;
}

TEST(OnPolicyTest, TrainerLogprobsEqualTheSamplersBitForBit) {
  auto rollout = testing::MakeMesh(2, "rollout");
  auto actor = testing::MakeMesh(3, "actor");
  auto engine = testing::MakeEngine(testing::StoriesOptions(), rollout.get());
  ASSERT_NE(engine, nullptr);
  GenerateRequest req;
  req.text = "Lily and Tom went to the park.";
  req.sampling.temperature = 0.7f;
  req.stop.max_new_tokens = 120;
  req.ignore_eos = true;
  req.seed = 4;
  req.return_logprobs = true;
  // Others in the batch must not matter either.
  GenerateRequest other = req;
  other.text = "One day";
  other.n = 5;
  auto busy = engine->Submit(other);
  auto r = engine->Generate(req);
  ASSERT_TRUE(r.ok() && busy.ok());
  const Scored s = TrainerLogprobs(*r, 0.7f, actor.get());
  ASSERT_EQ(s.logprobs.size(), r->samples[0].logprobs.size());
  int equal = 0;
  double worst = 0;
  for (size_t i = 0; i < s.logprobs.size(); ++i) {
    equal += s.logprobs[i] == r->samples[0].logprobs[i];
    worst = std::max(
        worst, double(std::fabs(s.logprobs[i] - r->samples[0].logprobs[i])));
  }
  EXPECT_EQ(equal, static_cast<int>(s.logprobs.size())) << "max diff " << worst;
  ASSERT_TRUE(busy->Wait().ok());
}

// With truncation the trainer recomputes the truncated distribution from
// its logits with the sampler's own SampledLogprob.
TEST(OnPolicyTest, TruncatedSamplingAgreesThroughSampledLogprob) {
  auto rollout = testing::MakeMesh(1, "rollout");
  auto engine = testing::MakeEngine(testing::StoriesOptions(), rollout.get());
  ASSERT_NE(engine, nullptr);
  GenerateRequest req;
  req.text = "Once upon a time";
  req.sampling = {
      .temperature = 1.0f, .top_k = 20, .top_p = 0.9f, .min_p = 0.02f};
  req.stop.max_new_tokens = 80;
  req.ignore_eos = true;
  req.seed = 8;
  req.return_logprobs = true;
  auto r = engine->Generate(req);
  ASSERT_TRUE(r.ok());
  const Scored s = TrainerLogprobs(*r, 1.0f, nullptr);
  const int64_t vocab = 512;
  SamplingScratch scratch(vocab);
  for (size_t i = 0; i < s.logprobs.size(); ++i) {
    auto lp = SampledLogprob(s.logits.data() + i * vocab, vocab, req.sampling,
                             r->samples[0].token_ids[i], scratch);
    ASSERT_TRUE(lp.ok());
    EXPECT_EQ(*lp, r->samples[0].logprobs[i]) << i;
  }
}

}  // namespace
}  // namespace rlrt
