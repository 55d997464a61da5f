// Finite-difference spot checks of the backward pass on our own forward: an
// independent check of the gradient that needs neither PyTorch nor any
// backward formula.
//
// There is no float64 path, so the loss is evaluated in float32 and the
// quotient carries its rounding noise. Tolerance, derived: the loss
// L = sum_t w_t logprob_t (17 targets, |w_t| <= 2.5, |logprob| <= 10) is
// computed from float logits, whose rounding is a few ulps of their size
// (~1e-6 absolute); perturbing one weight changes that rounding, so each
// evaluation of L carries noise of about sqrt(17) x 2.5 x 1e-6 ~ 1e-5. A
// central difference divides the difference of two such values by 2h, and
// Richardson extrapolation over h and h/2 ((4 D(h/2) - D(h)) / 3, which
// removes the O(h^2) truncation error) amplifies noise by ~3: with
// h = 1e-2 the quotient's noise is ~3 x 1e-5 / 1e-2 = 3e-3 absolute at
// worst, and the truncation left is O(h^4) ~ 1e-8. So an element passes
// when |fd - g| <= 3e-3 + 1e-3 |g|; measured errors are printed and are
// about ten times smaller. A wrong gradient term is typically off by
// O(|g|) (the elements checked have |g| of 0.1 to 10), far above this.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>

#include "models/test_util.h"
#include "models/train/train_test_util.h"

namespace rlrt {
namespace {

using nlohmann::json;

struct Check {
  std::string leaf;
  int64_t index;
};

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
  ParamLeaves grads = testing::ZeroGradients(model.config);
  testing::WeightedLoss(*trainable, batch, temperature, w, &grads);

  auto loss_at = [&](float* element, float value) {
    const float saved = *element;
    *element = value;
    const double loss =
        testing::WeightedLoss(*trainable, batch, temperature, w, nullptr);
    *element = saved;
    return loss;
  };
  const double h = 1e-2;
  int checked = 0;
  double worst = 0;
  for (size_t leaf = 0; leaf < grads.size(); ++leaf) {
    const std::span<const float> g = grads.F32(leaf);
    for (int64_t i : ElementsToCheck(g)) {
      float* element = &model.leaves.F32(leaf)[i];
      const float x = *element;
      auto quotient = [&](double step) {
        return (loss_at(element, static_cast<float>(x + step)) -
                loss_at(element, static_cast<float>(x - step))) /
               (static_cast<float>(x + step) - static_cast<float>(x - step));
      };
      const double fd = (4 * quotient(h / 2) - quotient(h)) / 3;
      const double err = std::fabs(fd - g[i]);
      worst = std::max(worst, err / (3e-3 + 1e-3 * std::fabs(g[i])));
      EXPECT_LE(err, 3e-3 + 1e-3 * std::fabs(g[i]))
          << grads.spec(leaf).name << "[" << i << "]: backward " << g[i]
          << ", finite difference " << fd;
      ++checked;
    }
  }
  std::printf("%s %s: %d elements checked, worst error %.2f of the tolerance\n",
              name.c_str(), case_name.c_str(), checked, worst);
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, FiniteDifferenceTest,
    ::testing::Values(std::make_pair("qwen3_tied", "weighted_t07"),
                      std::make_pair("qwen2", "weighted_t1"),
                      std::make_pair("llama", "cross_entropy")),
    [](const auto& info) {
      return info.param.first + "_" + info.param.second;
    });

}  // namespace
}  // namespace rlrt
