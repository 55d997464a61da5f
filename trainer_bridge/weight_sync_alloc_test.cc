// The in-process sync hands the trainer's leaves to the engine: no staging
// copy of the model is allocated, not even on the first push.
#include <gtest/gtest.h>

#include <memory>

#include "models/leaf_checksum.h"
#include "models/test_util.h"
#include "models/testing/allocation_counter.h"
#include "sampler/engine.h"
#include "sampler/engine_test_util.h"
#include "trainer_bridge/weight_sync.h"

namespace rlrt {
namespace {

TEST(WeightSyncAllocTest, PushesLeafToLeafWithoutStaging) {
  auto rollout = testing::MakeMesh(1, "rollout");
  auto actor = testing::MakeMesh(1, "actor");
  auto engine =
      testing::MakeEngine(testing::StoriesOptions("dummy"), rollout.get());
  ASSERT_NE(engine, nullptr);
  const LoadedModel trainer = testing::LoadStories();
  const uint64_t trainer_hash = ContentHash(trainer.weights);
  ASSERT_NE(engine->WeightsChecksum()->content_hash, trainer_hash);
  WeightSync sync(engine.get(), actor.get());

  const long bytes_before = testing::AllocatedBytes();
  StatusOr<SyncReport> first = sync.Push(trainer.weights, 1);
  const long allocated = testing::AllocatedBytes() - bytes_before;
  ASSERT_TRUE(first.ok()) << first.status();
  const long payload = static_cast<long>(trainer.weights.total_bytes());
  EXPECT_EQ(first->bytes, static_cast<uint64_t>(payload));
  // Staging the payload would allocate all of it again.
  EXPECT_LT(allocated, payload / 16)
      << allocated << " bytes allocated for a push of " << payload;
  EXPECT_EQ(first->content_hash, trainer_hash);
  EXPECT_EQ(engine->WeightsChecksum()->content_hash, trainer_hash);
  EXPECT_EQ(engine->Stats().weight_version, 1u);

  // An older version is refused with the weights kept.
  StatusOr<SyncReport> stale = sync.Push(trainer.weights, 1);
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(stale.status().message().find("keeps version 1"), std::string::npos)
      << stale.status();
  EXPECT_EQ(engine->Stats().updates_refused, 1);
}

}  // namespace
}  // namespace rlrt
