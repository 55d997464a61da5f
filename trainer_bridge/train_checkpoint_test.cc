// Training checkpoints: what is saved loads back bit for bit, only the
// newest keep_last step directories survive, and a damaged `latest` or
// state.json is refused with the reason.
#include "trainer_bridge/train_checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "models/forward/model_source.h"
#include "trainer_bridge/grpo_learner.h"

namespace rlrt {
namespace {

namespace fs = std::filesystem;

constexpr char kCheckpointFixture[] =
    RLRT_SOURCE_DIR "/tests/reference/fixtures/qwen3_untied";

class TrainCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("train_ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    ModelSource source;
    source.model_dir = kCheckpointFixture;
    source.load_format = "safetensors";
    auto m = LoadModel(source, nullptr);
    ASSERT_TRUE(m.ok()) << m.status();
    config_ = m->config;
    GrpoOptions options;
    options.lr.peak = 1e-2;
    options.loss.beta = 0.04;  // With a reference model.
    auto learner =
        GrpoLearner::Create(m->config, m->weights, nullptr, nullptr, options);
    ASSERT_TRUE(learner.ok()) << learner.status();
    learner_ = std::move(learner).value();
    // One SFT step, so the moments and step count are not trivial.
    const std::vector<SftExample> batch = {{{5, 6, 7}, {8, 9, 10}}};
    auto step = learner_->SftStep(batch);
    ASSERT_TRUE(step.ok()) << step.status();
  }
  void TearDown() override { fs::remove_all(dir_); }

  TrainingState State(int64_t step) {
    return {step, static_cast<uint64_t>(step + 1), 7, 4, 2};
  }

  static bool SameBytes(const ParamLeaves& a, const ParamLeaves& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a.bytes(i) != b.bytes(i) ||
          std::memcmp(a.data(i), b.data(i), a.bytes(i)) != 0)
        return false;
    }
    return true;
  }

  fs::path dir_;
  ModelConfig config_;
  std::unique_ptr<GrpoLearner> learner_;
};

TEST_F(TrainCheckpointTest, RoundTripsWeightsMomentsAndState) {
  ASSERT_TRUE(SaveTrainingCheckpoint(dir_, *learner_, config_, State(3)).ok());
  auto loaded = LoadLatestTrainingCheckpoint(dir_, nullptr);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->path, dir_ / "step-00000003");
  EXPECT_EQ(loaded->state.step, 3);
  EXPECT_EQ(loaded->state.policy_version, 4u);
  EXPECT_EQ(loaded->state.seed, 7u);
  EXPECT_EQ(loaded->optimizer_steps, learner_->optimizer().steps());
  EXPECT_TRUE(SameBytes(loaded->weights, learner_->weights()));
  EXPECT_TRUE(
      SameBytes(loaded->first_moment, learner_->optimizer().first_moment()));
  EXPECT_TRUE(
      SameBytes(loaded->second_moment, learner_->optimizer().second_moment()));
}

TEST_F(TrainCheckpointTest, ReplacedReferenceIsSavedAndRestored) {
  ASSERT_NE(learner_->reference_weights(), nullptr);
  ASSERT_TRUE(SaveTrainingCheckpoint(dir_, *learner_, config_, State(1)).ok());
  EXPECT_FALSE(fs::exists(dir_ / "step-00000001" / "reference.safetensors"));
  auto plain = LoadLatestTrainingCheckpoint(dir_, nullptr);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->reference.has_value());

  // After the SFT step the policy has moved away from the reference.
  EXPECT_FALSE(SameBytes(*learner_->reference_weights(), learner_->weights()));
  const std::vector<Completion> batch = {
      {{5, 6}, {7, 8, 9}, {-1.f, -1.f, -1.f}, 1.0, false},
      {{5, 6}, {10, 11}, {-1.f, -1.f}, 0.0, false}};
  auto drifted = learner_->Step(batch, 2);
  ASSERT_TRUE(drifted.ok()) << drifted.status();
  EXPECT_GT(drifted->kl, 0);

  ASSERT_TRUE(learner_->SetReference(learner_->weights()).ok());
  EXPECT_TRUE(learner_->reference_replaced());
  EXPECT_TRUE(SameBytes(*learner_->reference_weights(), learner_->weights()));
  ASSERT_TRUE(SaveTrainingCheckpoint(dir_, *learner_, config_, State(2)).ok());
  auto loaded = LoadLatestTrainingCheckpoint(dir_, nullptr);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->reference.has_value());
  EXPECT_TRUE(SameBytes(*loaded->reference, learner_->weights()));
  // The KL of the first iteration is measured before the update: against
  // a reference equal to the policy it is exactly 0.
  auto anchored = learner_->Step(batch, 2);
  ASSERT_TRUE(anchored.ok()) << anchored.status();
  EXPECT_EQ(anchored->kl, 0.0);

  // Another structure is refused and changes nothing.
  auto other = ParamLeaves::Allocate({LeafSpec{"x", {3}, DType::kF32}});
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(learner_->SetReference(*other).ok());
  EXPECT_TRUE(SameBytes(*learner_->reference_weights(), *loaded->reference));
}

// In BF16 mixed precision the checkpoint holds the float32 master the
// learner keeps split, finer than the copy, and a learner restored from it
// continues exactly as the saved one does.
TEST_F(TrainCheckpointTest, Bf16MasterIsSavedWholeAndResumesExactly) {
  ModelSource source;
  source.model_dir = kCheckpointFixture;
  source.load_format = "safetensors";
  source.dtype = "bfloat16";
  auto m = LoadModel(source, nullptr);
  ASSERT_TRUE(m.ok()) << m.status();
  GrpoOptions options;
  options.lr.peak = 1e-4;  // small steps: many stay below half a BF16 step
  auto make = [&] {
    auto l =
        GrpoLearner::Create(m->config, m->weights, nullptr, nullptr, options);
    EXPECT_TRUE(l.ok()) << l.status();
    return std::move(l).value();
  };
  std::unique_ptr<GrpoLearner> saved = make();
  const std::vector<SftExample> batch = {{{5, 6, 7}, {8, 9, 10}}};
  ASSERT_TRUE(saved->SftStep(batch).ok());
  ASSERT_TRUE(SaveTrainingCheckpoint(dir_, *saved, config_, State(1)).ok());
  auto loaded = LoadLatestTrainingCheckpoint(dir_, nullptr);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  int64_t finer = 0;
  ASSERT_TRUE(saved
                  ->WithMasterWeights([&](const ParamLeaves& master) {
                    EXPECT_TRUE(SameBytes(loaded->weights, master));
                    const ParamLeaves& copy = saved->weights();
                    for (size_t i = 0; i < master.size(); ++i) {
                      for (int64_t k = 0; k < master.spec(i).NumElements();
                           ++k) {
                        finer += master.F32(i)[k] !=
                                 LoadAsF32(copy.data(i), copy.spec(i).dtype, k);
                      }
                    }
                    return OkStatus();
                  })
                  .ok());
  EXPECT_GT(finer, 0);

  std::unique_ptr<GrpoLearner> resumed = make();
  ASSERT_TRUE(resumed
                  ->RestoreState(loaded->weights, loaded->first_moment,
                                 loaded->second_moment, loaded->optimizer_steps)
                  .ok());
  EXPECT_EQ(resumed->MasterContentHash(), saved->MasterContentHash());
  EXPECT_TRUE(SameBytes(resumed->weights(), saved->weights()));
  ASSERT_TRUE(saved->SftStep(batch).ok());
  ASSERT_TRUE(resumed->SftStep(batch).ok());
  EXPECT_EQ(resumed->MasterContentHash(), saved->MasterContentHash());
  EXPECT_TRUE(SameBytes(resumed->weights(), saved->weights()));
}

TEST_F(TrainCheckpointTest, KeepsOnlyTheNewestStepDirectories) {
  for (int64_t step = 1; step <= 5; ++step) {
    ASSERT_TRUE(SaveTrainingCheckpoint(dir_, *learner_, config_, State(step),
                                       /*keep_last=*/2)
                    .ok());
  }
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step-00000004",
                                             "step-00000005"}));
  auto loaded = LoadLatestTrainingCheckpoint(dir_, nullptr);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->state.step, 5);

  // keep_last = 0 keeps everything.
  ASSERT_TRUE(SaveTrainingCheckpoint(dir_, *learner_, config_, State(6)).ok());
  EXPECT_TRUE(fs::exists(dir_ / "step-00000004"));
}

TEST_F(TrainCheckpointTest, DamagedLatestOrStateIsRefusedWithTheReason) {
  auto latest = LoadLatestTrainingCheckpoint(dir_, nullptr);
  EXPECT_EQ(latest.status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(SaveTrainingCheckpoint(dir_, *learner_, config_, State(2)).ok());
  std::ofstream(dir_ / "latest") << "../elsewhere\n";
  latest = LoadLatestTrainingCheckpoint(dir_, nullptr);
  EXPECT_EQ(latest.status().code(), StatusCode::kDataLoss);

  std::ofstream(dir_ / "latest") << "step-00000002\n";
  std::ofstream(dir_ / "step-00000002" / "state.json") << "{\"step\": -1}";
  latest = LoadLatestTrainingCheckpoint(dir_, nullptr);
  EXPECT_EQ(latest.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(latest.status().message().find("state.json"), std::string::npos)
      << latest.status();
}

}  // namespace
}  // namespace rlrt
