// The backward pass against PyTorch autograd: for the tiny Qwen3 (tied and
// untied), Qwen2 and Llama fixtures, every parameter's gradient of a
// cross-entropy loss and of sum_t w_t logprob_t at temperatures 1 and 0.7
// (tests/reference/gen_grad_fixtures.py, float64). Prints one line per
// tensor, llm.c style: OK / NOT OK with the error relative to the tensor's
// largest gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "models/io/safetensors.h"
#include "models/test_util.h"
#include "models/train/losses.h"
#include "models/train/train_test_util.h"

namespace rlrt {
namespace {

using nlohmann::json;

class PyTorchGradientTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PyTorchGradientTest, EveryLeafMatchesAutograd) {
  const std::string name = GetParam();
  LoadedCheckpoint model = testing::LoadFixture(name);
  const json fixture =
      testing::ReadJsonFile(testing::FixtureDir(name) + "/gradients.json");
  auto reference = SafetensorsFile::Open(testing::FixtureDir(name) +
                                         "/gradients.safetensors");
  ASSERT_TRUE(reference.ok()) << reference.status();
  const testing::OwnedBatch batch = testing::BatchFromJson(fixture);
  auto mesh = testing::MakeMesh(2);
  auto trainable =
      testing::MakeTrainable(model.config, model.leaves, mesh.get());
  ASSERT_TRUE(trainable);

  for (const json& c : fixture["cases"]) {
    const std::string case_name = c["name"];
    const float temperature = c["temperature"].get<float>();
    std::vector<float> logprobs(batch.num_targets());
    ASSERT_TRUE(
        trainable->Forward(batch.sequences, temperature, logprobs).ok());
    const auto want_logprobs = c["logprobs"].get<std::vector<double>>();
    for (size_t i = 0; i < logprobs.size(); ++i)
      EXPECT_NEAR(logprobs[i], want_logprobs[i], 1e-5) << case_name << " " << i;

    // dLoss/dlogprob: the fixture's weights, or our cross-entropy.
    std::vector<float> dloss = c["dloss_dlogprob"].get<std::vector<float>>();
    if (case_name == "cross_entropy") {
      std::vector<float> ce(logprobs.size());
      StatusOr<double> loss = CrossEntropyLoss(logprobs, ce);
      ASSERT_TRUE(loss.ok());
      EXPECT_NEAR(*loss, c["loss"].get<double>(), 1e-5);
      for (size_t i = 0; i < ce.size(); ++i) EXPECT_FLOAT_EQ(ce[i], dloss[i]);
      dloss = ce;
    }
    ParamLeaves grads = testing::ZeroGradients(model.config);
    ASSERT_TRUE(trainable->Backward(dloss, grads).ok());

    double worst = 0;
    for (const auto& [leaf_name, e] :
         testing::CompareGradients(grads, *reference, case_name)) {
      worst = std::max(worst, e.relative());
      const bool ok = e.relative() <= 1e-4;
      EXPECT_TRUE(ok) << name << " " << case_name << " " << leaf_name;
      std::printf("%-7s %s %s %s: max|diff| %.2e, relative %.2e\n",
                  ok ? "OK" : "NOT OK", name.c_str(), case_name.c_str(),
                  leaf_name.c_str(), e.max_abs_diff, e.relative());
    }
    std::printf("%s %s: worst relative gradient error %.2e\n", name.c_str(),
                case_name.c_str(), worst);
  }
}

INSTANTIATE_TEST_SUITE_P(TinyModels, PyTorchGradientTest,
                         ::testing::Values("qwen3_tied", "qwen3_untied",
                                           "qwen2", "llama"));

}  // namespace
}  // namespace rlrt
