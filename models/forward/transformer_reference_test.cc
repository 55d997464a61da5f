// The forward pass against independent numbers: PyTorch (tests/reference/,
// float64, Hugging Face semantics) for tiny random Qwen3/Qwen2/Llama models,
// and the golden outputs of the original stories260K model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "models/forward/forward_test_util.h"
#include "models/forward/transformer.h"
#include "models/io/checkpoint.h"
#include "models/ops/log_softmax.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

using nlohmann::json;
using testing::MaxAbsDiff;
using testing::SequenceLogits;

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing " << path;
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
}

std::vector<float> Flatten(const json& rows) {
  std::vector<float> out;
  for (const auto& row : rows) {
    for (const auto& v : row) out.push_back(v.get<float>());
  }
  return out;
}

struct Loaded {
  std::unique_ptr<Mesh> mesh;
  std::unique_ptr<LoadedCheckpoint> checkpoint;
  std::unique_ptr<Transformer> model;
};

Loaded Load(const std::string& dir) {
  Loaded l;
  l.mesh = testing::MakeMesh(2);
  auto checkpoint = LoadCheckpoint(dir, l.mesh.get());
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
  if (!checkpoint.ok()) return l;
  l.checkpoint =
      std::make_unique<LoadedCheckpoint>(std::move(checkpoint).value());
  TransformerOptions options;
  options.max_batch_tokens = 512;
  auto model = Transformer::Create(l.checkpoint->config, l.checkpoint->leaves,
                                   l.mesh.get(), options);
  EXPECT_TRUE(model.ok()) << model.status();
  if (model.ok()) l.model = std::move(model).value();
  return l;
}

class PyTorchFixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PyTorchFixtureTest, LogitsMatchPyTorchInPrefillAndDecode) {
  const std::string dir =
      std::string(RLRT_SOURCE_DIR) + "/tests/reference/fixtures/" + GetParam();
  Loaded l = Load(dir);
  ASSERT_TRUE(l.model);
  const json expected = ReadJson(dir + "/expected.json");
  ASSERT_TRUE(expected.contains("cases"));
  const int64_t vocab = l.model->config().vocab_size;
  double worst_prefill = 0, worst_decode = 0, worst_gap = 0;
  for (const json& c : expected["cases"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    const std::vector<float> want = Flatten(c["logits"]);
    const std::vector<float> prefill = SequenceLogits(*l.model, ids, false);
    const std::vector<float> decode = SequenceLogits(*l.model, ids, true);
    worst_prefill = std::max(worst_prefill, MaxAbsDiff(prefill, want));
    worst_decode = std::max(worst_decode, MaxAbsDiff(decode, want));
    worst_gap = std::max(worst_gap, MaxAbsDiff(prefill, decode));
    EXPECT_LE(MaxAbsDiff(prefill, want), 1e-4)
        << GetParam() << " T=" << ids.size();
    EXPECT_LE(MaxAbsDiff(decode, want), 1e-4)
        << GetParam() << " T=" << ids.size();
    EXPECT_LE(MaxAbsDiff(prefill, decode), 1e-5)
        << GetParam() << " T=" << ids.size();
    const auto logprobs = c["next_token_logprobs"].get<std::vector<double>>();
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
      EXPECT_NEAR(TokenLogprob(&prefill[t * vocab], vocab, ids[t + 1]),
                  logprobs[t], 1e-4);
    }
  }
  // The measured margins, for the record (the bars are asserted above).
  std::printf(
      "%s: max|dlogit| prefill %.2e decode %.2e, prefill-vs-decode %.2e\n",
      GetParam().c_str(), worst_prefill, worst_decode, worst_gap);
}

TEST_P(PyTorchFixtureTest, RaggedBatchOfAllCasesEqualsEachAlone) {
  const std::string dir =
      std::string(RLRT_SOURCE_DIR) + "/tests/reference/fixtures/" + GetParam();
  Loaded l = Load(dir);
  ASSERT_TRUE(l.model);
  const json expected = ReadJson(dir + "/expected.json");
  const int64_t vocab = l.model->config().vocab_size;
  auto cache = KvCache::Create(KvCacheShape::For(l.model->config(), 256, 4));
  PagePool pool((*cache)->shape().num_pages);
  std::vector<std::vector<int32_t>> ids, pages;
  for (const json& c : expected["cases"])
    ids.push_back(c["ids"].get<std::vector<int32_t>>());
  std::vector<SequenceInput> batch;
  pages.resize(ids.size());
  int64_t rows = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(pool.Allocate(8, &pages[i]).ok());
    batch.push_back(SequenceInput{ids[i], 0, pages[i], true});
    rows += ids[i].size();
  }
  std::vector<float> logits(rows * vocab);
  ASSERT_TRUE(l.model->Forward(batch, **cache, logits).ok());
  int64_t row = 0;
  for (const auto& s : ids) {
    const std::vector<float> alone = SequenceLogits(*l.model, s, false);
    const std::vector<float> part(logits.begin() + row * vocab,
                                  logits.begin() + (row + s.size()) * vocab);
    EXPECT_EQ(part, alone);
    row += s.size();
  }
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, PyTorchFixtureTest,
    ::testing::Values("qwen3_tied", "qwen3_untied", "qwen2", "llama",
                      "qwen3_tied/model_bf16", "qwen3_untied/model_bf16",
                      "qwen2/model_bf16", "llama/model_bf16"),
    [](const auto& info) {
      std::string name = info.param;
      for (char& ch : name) ch = ch == '/' ? '_' : ch;
      return name;
    });

// stories260K: a real pretrained Llama, with golden outputs from the original.
class Stories260KTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loaded_ = Load(kDir);
    reference_ = ReadJson(std::string(kDir) + "/reference.json");
  }
  static constexpr const char* kDir = RLRT_SHARED_DIR "/models/stories260K";
  Loaded loaded_;
  json reference_;
};

TEST_F(Stories260KTest, PromptLogitsMatch) {
  ASSERT_TRUE(loaded_.model);
  const json& ref = reference_["prompt_logits"];
  const auto ids = ref["prompt_ids"].get<std::vector<int32_t>>();
  const double diff = MaxAbsDiff(SequenceLogits(*loaded_.model, ids, false),
                                 Flatten(ref["logits"]));
  EXPECT_LE(diff, 1e-4);
  std::printf("stories260K: max|dlogit| over the prompt %.2e\n", diff);
}

// Greedy decoding through the KV cache, one token per step, as an engine does.
std::vector<int32_t> Greedy(Transformer& model, std::vector<int32_t> ids,
                            int steps) {
  const int64_t vocab = model.config().vocab_size;
  auto cache = KvCache::Create(KvCacheShape::For(model.config(), 512, 16));
  PagePool pool((*cache)->shape().num_pages);
  std::vector<int32_t> pages;
  EXPECT_TRUE(pool.Allocate(pool.num_pages(), &pages).ok());
  std::vector<float> logits(vocab);
  SequenceInput prompt{ids, 0, pages, false};
  EXPECT_TRUE(model.Forward({&prompt, 1}, **cache, logits).ok());
  for (int s = 0; s < steps; ++s) {
    ids.push_back(ArgMax(logits.data(), vocab));
    if (s + 1 == steps) break;
    SequenceInput next{
        {&ids.back(), 1}, static_cast<int64_t>(ids.size()) - 1, pages, false};
    EXPECT_TRUE(model.Forward({&next, 1}, **cache, logits).ok());
  }
  return ids;
}

TEST_F(Stories260KTest, GreedyFromBosReproducesAll256Tokens) {
  ASSERT_TRUE(loaded_.model);
  const json& ref = reference_["greedy_from_bos"];
  const auto want = ref["ids"].get<std::vector<int32_t>>();
  // llama2.c's `steps` counts positions including the prompt: ids holds
  // steps + 1 tokens.
  const auto got = Greedy(*loaded_.model, {1}, ref["steps"].get<int>());
  EXPECT_EQ(got, want);
  // And the per-token logprobs along the way.
  const auto logprobs =
      ref["logprob_of_each_next_token"].get<std::vector<double>>();
  const auto all = SequenceLogits(*loaded_.model, want, false, 16);
  for (size_t t = 0; t < logprobs.size(); ++t) {
    EXPECT_NEAR(TokenLogprob(&all[t * 512], 512, want[t + 1]), logprobs[t],
                1e-4)
        << t;
  }
}

TEST_F(Stories260KTest, GreedyFromPromptMatches) {
  ASSERT_TRUE(loaded_.model);
  const json& ref = reference_["greedy_from_prompt"];
  const auto prompt = ref["prompt_ids"].get<std::vector<int32_t>>();
  const int new_tokens =
      ref["steps"].get<int>() + 1 - static_cast<int>(prompt.size());
  EXPECT_EQ(Greedy(*loaded_.model, prompt, new_tokens),
            ref["ids"].get<std::vector<int32_t>>());
}

}  // namespace
}  // namespace rlrt
