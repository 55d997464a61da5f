// Finite-difference spot checks of the backward pass on our own forward: an
// independent check of the gradient that needs neither PyTorch nor any
// backward formula.
//
// There is no float64 path, so the loss is evaluated in float32 and the
// quotient carries its rounding noise. Tolerance, derived: each logprob
// comes from float logits whose rounding is a few ulps (logprobs are below
// 10 in size, an ulp there is 1e-6), and perturbing one weight reshuffles
// that rounding, so L = sum_t w_t logprob_t carries noise of about
// e = 5e-6 ||w||_2 (a margin of two over the few-ulp estimate). A central
// difference over h has noise sqrt(2) e / 2h; Richardson extrapolation over
// h and h/2, (4 D(h/2) - D(h)) / 3, removes the O(h^2) truncation (what is
// left is O(h^4) ~ 1e-8) and has noise ~1.9 e / h. With h = 1e-2 an element
// passes when |fd - g| <= 300 e + 1e-3 |g| = 1.5e-3 ||w||_2 + 1e-3 |g|
// (the relative term covers rounding of the step itself). The measured
// errors, printed, are well inside; a wrong gradient term is typically off
// by O(|g|), and the checked elements have |g| well above the tolerance
// (also printed).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>

#include "models/forward/forward_test_util.h"
#include "models/leaf_init.h"
#include "models/test_util.h"
#include "models/train/train_test_util.h"

namespace rlrt {
namespace {

using nlohmann::json;

// The two largest-|g| elements of the leaf and one more from its middle.
std::vector<int64_t> ElementsToCheck(std::span<const float> grad) {
  std::vector<int64_t> order(grad.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 2, order.end(),
                    [&](int64_t a, int64_t b) {
                      return std::fabs(grad[a]) > std::fabs(grad[b]);
                    });
  return {order[0], order[1], static_cast<int64_t>(grad.size() / 2)};
}

struct SpotCheckResult {
  double worst = 0;         // The largest error, as a fraction of tolerance.
  double largest_grad = 0;  // The largest |gradient| checked.
  double median_grad = 0;   // The median |gradient| checked.
};

// Checks ElementsToCheck of every leaf of `weights` (which `model` reads)
// against the backward of sum_t w_t logprob_t.
SpotCheckResult SpotCheck(TrainableTransformer& model, ParamLeaves& weights,
                          const testing::OwnedBatch& batch, float temperature,
                          const std::vector<float>& w) {
  double w_norm = 0;
  for (float x : w) w_norm += double(x) * x;
  const double noise_tolerance = 1.5e-3 * std::sqrt(w_norm);
  ParamLeaves grads = testing::ZeroGradients(model.config());
  testing::WeightedLoss(model, batch, temperature, w, &grads);
  auto loss_at = [&](float* element, float value) {
    const float saved = *element;
    *element = value;
    const double loss =
        testing::WeightedLoss(model, batch, temperature, w, nullptr);
    *element = saved;
    return loss;
  };
  const double h = 1e-2;
  SpotCheckResult result;
  std::vector<double> magnitudes;
  for (size_t leaf = 0; leaf < grads.size(); ++leaf) {
    const std::span<const float> g = grads.F32(leaf);
    for (int64_t i : ElementsToCheck(g)) {
      float* element = &weights.F32(leaf)[i];
      const float x = *element;
      // The steps actually taken, after rounding x +- step to float.
      auto quotient = [&](double step) {
        const float up = static_cast<float>(x + step);
        const float down = static_cast<float>(x - step);
        return (loss_at(element, up) - loss_at(element, down)) / (up - down);
      };
      const double fd = (4 * quotient(h / 2) - quotient(h)) / 3;
      const double tolerance = noise_tolerance + 1e-3 * std::fabs(g[i]);
      result.worst = std::max(result.worst, std::fabs(fd - g[i]) / tolerance);
      magnitudes.push_back(std::fabs(g[i]));
      EXPECT_LE(std::fabs(fd - g[i]), tolerance)
          << grads.spec(leaf).name << "[" << i << "]: backward " << g[i]
          << ", finite difference " << fd;
    }
  }
  std::sort(magnitudes.begin(), magnitudes.end());
  result.largest_grad = magnitudes.back();
  result.median_grad = magnitudes[magnitudes.size() / 2];
  return result;
}

void Print(const std::string& what, const SpotCheckResult& r) {
  std::printf(
      "%s: worst error %.2f of the tolerance; |gradient| checked: largest "
      "%.2e, median %.2e\n",
      what.c_str(), r.worst, r.largest_grad, r.median_grad);
}

class FiniteDifferenceTest
    : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(FiniteDifferenceTest, SpotChecksAgreeWithBackward) {
  const auto& [name, case_name] = GetParam();
  LoadedCheckpoint model = testing::LoadFixture(name);
  const json fixture =
      testing::ReadJsonFile(testing::FixtureDir(name) + "/gradients.json");
  const testing::OwnedBatch batch = testing::BatchFromJson(fixture);
  float temperature = 1.0f;
  std::vector<float> w;
  for (const json& c : fixture["cases"]) {
    if (c["name"] != case_name) continue;
    temperature = c["temperature"].get<float>();
    w = c["dloss_dlogprob"].get<std::vector<float>>();
  }
  ASSERT_FALSE(w.empty());
  auto trainable = testing::MakeTrainable(model.config, model.leaves, nullptr);
  Print(name + " " + case_name,
        SpotCheck(*trainable, model.leaves, batch, temperature, w));
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, FiniteDifferenceTest,
    ::testing::Values(std::make_pair("qwen3_tied", "weighted_t07"),
                      std::make_pair("qwen2", "weighted_t1"),
                      std::make_pair("llama", "cross_entropy")),
    [](const auto& info) {
      return info.param.first + "_" + info.param.second;
    });

// A 300-token sequence: every reduction over tokens crosses the 256-long
// summation blocks, and attention spans the whole sequence. SmallQwen3
// with weights as large as the fixtures' (N(0, 0.2^2)-like), cross-entropy
// over the last half at T = 0.7.
TEST(FiniteDifferenceLongTest, SpotChecksAgreeWithBackward) {
  const ModelConfig config = testing::SmallQwen3();
  ParamLeaves weights = testing::ZeroGradients(config);
  ASSERT_TRUE(FillDummy(weights, 11, nullptr, [](const LeafSpec& spec) {
                DummyInit rule;
                rule.stddev = 0.2f;
                if (spec.name.ends_with("norm.weight")) {
                  rule.kind = DummyInit::Kind::kConstant;
                  rule.value = 1.0f;
                }
                return rule;
              }).ok());
  std::vector<int32_t> ids(300), targets;
  for (int32_t t = 0; t < 300; ++t) ids[t] = (t * 37 + 11) % config.vocab_size;
  for (int32_t t = 150; t < 299; ++t) targets.push_back(t);
  testing::OwnedBatch batch;
  batch.Add(ids, targets);
  const std::vector<float> w(targets.size(), -1.0f / targets.size());
  auto mesh = testing::MakeMesh(2);
  auto trainable =
      testing::MakeTrainable(config, weights, mesh.get(), {512, 64});
  Print("small_qwen3, 300 tokens",
        SpotCheck(*trainable, weights, batch, 0.7f, w));
}

}  // namespace
}  // namespace rlrt
