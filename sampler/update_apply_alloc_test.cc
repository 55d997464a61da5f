// Steady-state updates must not allocate: counts every global operator new
// in this binary while applying.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "models/config/param_budget.h"
#include "models/forward/model_source.h"
#include "models/leaf_init.h"
#include "models/test_util.h"
#include "models/testing/allocation_counter.h"
#include "sampler/engine.h"
#include "sampler/engine_test_util.h"
#include "sampler/update_apply.h"
#include "sampler/update_test_util.h"

namespace rlrt {
namespace {

TEST(UpdateApplyAllocTest, CounterSeesAllocations) {
  const long before = testing::AllocationCount();
  auto p = std::make_unique<std::vector<int>>(1000);
  EXPECT_GE(testing::AllocationCount() - before, 2);
}

TEST(UpdateApplyAllocTest, SteadyStateApplyAllocatesNothing) {
  ParamLeaves source = testing::AllocateOrDie(testing::MixedSpecs());
  ParamLeaves target = testing::AllocateOrDie(testing::MixedSpecs());
  ASSERT_TRUE(FillDummy(source, 1).ok());
  auto mesh = testing::MakeMesh(2);
  proto::UpdateParams u = testing::HandBuiltUpdate(source, 0);
  u.set_expected_content_hash(ContentHash(source));
  u.set_return_checksums(true);
  // Warm-up: the first apply may size lazily created state.
  u.set_version(1);
  ASSERT_TRUE(ApplyUpdateParams(u, target, mesh.get()).ok());

  const long before = testing::AllocationCount();
  for (uint64_t v = 2; v < 12; ++v) {
    u.set_version(v);
    StatusOr<ApplyReport> r = ApplyUpdateParams(u, target, mesh.get());
    ASSERT_TRUE(r.ok());
  }
  EXPECT_EQ(testing::AllocationCount() - before, 0);
}

TEST(UpdateApplyAllocTest, SerializedPathReusesTheScratchMessage) {
  // Real Hugging Face names are longer than the small-string buffer, so this
  // also shows parsing reuses the name strings.
  const auto specs = LeafSpecsFor(*ConfigForParamBudget(2'000'000));
  ParamLeaves source = testing::AllocateOrDie(specs);
  ParamLeaves target = testing::AllocateOrDie(specs);
  ASSERT_TRUE(FillDummy(source, 1).ok());
  auto mesh = testing::MakeMesh(2);
  proto::UpdateParams u = testing::HandBuiltUpdate(source, 0);
  std::vector<std::string> wires;
  for (uint64_t v = 1; v < 12; ++v) {
    u.set_version(v);
    wires.push_back(u.SerializeAsString());
  }
  proto::UpdateParams scratch;
  ASSERT_TRUE(
      ApplySerializedUpdateParams(wires[0], &scratch, target, mesh.get()).ok());
  const long before = testing::AllocationCount();
  for (size_t k = 1; k < wires.size(); ++k) {
    ASSERT_TRUE(
        ApplySerializedUpdateParams(wires[k], &scratch, target, mesh.get())
            .ok());
  }
  EXPECT_EQ(testing::AllocationCount() - before, 0);
}

// The engine's update path: the hand-off to the scheduler thread, the apply
// between steps and the reply allocate nothing on any thread.
TEST(UpdateApplyAllocTest, EngineUpdatesAllocateNothing) {
  auto mesh = testing::MakeMesh(2);
  auto engine =
      testing::MakeEngine(testing::StoriesOptions("dummy"), mesh.get());
  ASSERT_NE(engine, nullptr);
  auto trainer = testing::LoadStories();
  proto::UpdateParams u = testing::HandBuiltUpdate(trainer.weights, 1);
  u.set_flush_cache(true);
  ASSERT_TRUE(
      engine->Generate(testing::GreedyText("Once upon a time", 8)).ok());
  ASSERT_TRUE(engine->UpdateParams(u).ok());
  const long before = testing::AllocationCount();
  for (uint64_t v = 2; v < 12; ++v) {
    u.set_version(v);
    ASSERT_TRUE(engine->UpdateParams(u).ok());
  }
  EXPECT_EQ(testing::AllocationCount() - before, 0);
  EXPECT_EQ(engine->Stats().weight_version, 11u);
}

}  // namespace
}  // namespace rlrt
