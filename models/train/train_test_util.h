// Helpers for the training tests: PyTorch fixtures, batches and one
// forward + backward step.
#ifndef RLRT_MODELS_TRAIN_TRAIN_TEST_UTIL_H_
#define RLRT_MODELS_TRAIN_TRAIN_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "models/io/checkpoint.h"
#include "models/io/safetensors.h"
#include "models/train/trainable_transformer.h"

namespace rlrt::testing {

inline std::string FixtureDir(const std::string& name) {
  return std::string(RLRT_SOURCE_DIR) + "/tests/reference/fixtures/" + name;
}

inline nlohmann::json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing " << path;
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str(), nullptr,
                               /*allow_exceptions=*/false);
}

inline LoadedCheckpoint LoadFixture(const std::string& name) {
  auto checkpoint = LoadCheckpoint(FixtureDir(name));
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
  return std::move(checkpoint).value();
}

// Largest |ours - reference| over a leaf, relative to its largest |reference|.
struct LeafError {
  double max_abs_diff = 0;
  double max_abs_reference = 0;
  // Sums of squares, for norms over several leaves.
  double sum_squared_diff = 0;
  double sum_squared_reference = 0;
  double relative() const {
    return max_abs_reference > 0 ? max_abs_diff / max_abs_reference
                                 : max_abs_diff;
  }
};

inline LeafError Compare(std::span<const float> ours,
                         const SafetensorsTensor& ref) {
  LeafError e;
  for (size_t i = 0; i < ours.size(); ++i) {
    float want;
    std::memcpy(&want, ref.data.data() + i * sizeof(float), sizeof(float));
    const double diff = double(ours[i]) - want;
    e.max_abs_diff = std::max(e.max_abs_diff, std::fabs(diff));
    e.max_abs_reference =
        std::max(e.max_abs_reference, std::fabs(double(want)));
    e.sum_squared_diff += diff * diff;
    e.sum_squared_reference += double(want) * want;
  }
  return e;
}

struct NamedLeafError {
  std::string leaf;
  LeafError error;
};

// Every gradient leaf against the reference tensor "<prefix>/<leaf name>";
// a reference missing or of another size fails the test.
inline std::vector<NamedLeafError> CompareGradients(
    const ParamLeaves& grads, const SafetensorsFile& reference,
    const std::string& prefix) {
  std::vector<NamedLeafError> out;
  for (size_t leaf = 0; leaf < grads.size(); ++leaf) {
    const std::string& name = grads.spec(leaf).name;
    const SafetensorsTensor* ref = reference.Find(prefix + "/" + name);
    EXPECT_NE(ref, nullptr) << prefix << "/" << name;
    if (ref == nullptr) continue;
    EXPECT_EQ(ref->NumElements(), grads.spec(leaf).NumElements()) << name;
    if (ref->NumElements() != grads.spec(leaf).NumElements()) continue;
    out.push_back({name, Compare(grads.F32(leaf), *ref)});
  }
  return out;
}

// Token and target storage behind a span-based batch.
struct OwnedBatch {
  std::vector<std::vector<int32_t>> tokens, targets;
  std::vector<TrainSequence> sequences;

  void Add(std::vector<int32_t> ids, std::vector<int32_t> positions) {
    tokens.push_back(std::move(ids));
    targets.push_back(std::move(positions));
    sequences.clear();
    for (size_t i = 0; i < tokens.size(); ++i)
      sequences.push_back({tokens[i], targets[i]});
  }
  int64_t num_targets() const { return NumTargets(sequences); }
};

// The batch of a gradients.json fixture.
inline OwnedBatch BatchFromJson(const nlohmann::json& fixture) {
  OwnedBatch batch;
  for (const auto& s : fixture["sequences"]) {
    batch.Add(s["tokens"].get<std::vector<int32_t>>(),
              s["targets"].get<std::vector<int32_t>>());
  }
  return batch;
}

// Every position but the last is a target.
inline OwnedBatch AllPositions(const std::vector<std::vector<int32_t>>& seqs) {
  OwnedBatch batch;
  for (const auto& ids : seqs) {
    std::vector<int32_t> targets;
    for (int32_t t = 0; t + 1 < static_cast<int32_t>(ids.size()); ++t)
      targets.push_back(t);
    batch.Add(ids, targets);
  }
  return batch;
}

inline ParamLeaves ZeroGradients(const ModelConfig& config) {
  auto grads = ParamLeaves::Allocate(LeafSpecsFor(config));
  EXPECT_TRUE(grads.ok()) << grads.status();
  return std::move(grads).value();
}

inline std::unique_ptr<TrainableTransformer> MakeTrainable(
    const ModelConfig& config, const ParamLeaves& weights, Mesh* mesh,
    TrainableTransformerOptions options = {}) {
  auto model = TrainableTransformer::Create(config, weights, mesh, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(model).value() : nullptr;
}

// sum_t w_t logprob_t at `temperature`, in double, and (when grads is not
// null) its gradient added into *grads.
inline double WeightedLoss(TrainableTransformer& model, const OwnedBatch& batch,
                           float temperature, const std::vector<float>& w,
                           ParamLeaves* grads) {
  std::vector<float> logprobs(batch.num_targets());
  Status s = model.Forward(batch.sequences, temperature, logprobs);
  EXPECT_TRUE(s.ok()) << s;
  double loss = 0;
  for (size_t i = 0; i < logprobs.size(); ++i)
    loss += static_cast<double>(w[i]) * logprobs[i];
  if (grads != nullptr) {
    s = model.Backward(w, *grads);
    EXPECT_TRUE(s.ok()) << s;
  }
  return loss;
}

}  // namespace rlrt::testing

#endif  // RLRT_MODELS_TRAIN_TRAIN_TEST_UTIL_H_
