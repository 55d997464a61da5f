#include "trainer_bridge/update_stream_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "models/config/model_config.h"
#include "models/forward/model_source.h"
#include "models/hash.h"
#include "models/leaf_checksum.h"
#include "models/leaf_copy.h"
#include "models/leaf_init.h"
#include "models/test_util.h"
#include "sampler/engine_test_util.h"

namespace rlrt {
namespace {

using testing::AllocateOrDie;
using testing::MakeMesh;
using testing::MixedSpecs;

TEST(UpdateStreamBuilderTest, ChunksCoverThePayloadInOrderWithTheirHashes) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  ASSERT_TRUE(FillDummy(leaves, 9).ok());
  std::string payload;
  for (size_t i = 0; i < leaves.size(); ++i)
    payload.append(reinterpret_cast<const char*>(leaves.data(i)),
                   leaves.bytes(i));
  auto mesh = MakeMesh(2);
  for (size_t chunk_bytes :
       {size_t{4096}, size_t{1} << 20, payload.size(), payload.size() + 1}) {
    auto writer = UpdateStreamWriter::Start(
        leaves, 12, {.chunk_bytes = chunk_bytes, .flush_cache = false},
        mesh.get());
    ASSERT_TRUE(writer.ok()) << writer.status();
    const proto::UpdateStreamBegin& b = writer->begin();
    EXPECT_EQ(b.version(), 12u);
    EXPECT_EQ(b.structure_fingerprint(), leaves.fingerprint());
    EXPECT_EQ(b.total_bytes(), payload.size());
    EXPECT_EQ(b.expected_content_hash(), ContentHash(leaves));
    EXPECT_FALSE(b.flush_cache());
    EXPECT_EQ(b.num_chunks(), (payload.size() + chunk_bytes - 1) / chunk_bytes);
    std::string rebuilt;
    proto::UpdateChunk chunk;
    for (uint32_t i = 0; i < writer->num_chunks(); ++i) {
      ASSERT_TRUE(writer->FillChunk(i, &chunk).ok());
      EXPECT_EQ(chunk.version(), 12u);
      EXPECT_EQ(chunk.index(), i);
      EXPECT_EQ(chunk.offset(), rebuilt.size());
      EXPECT_EQ(chunk.data_hash(),
                HashBytes(chunk.data().data(), chunk.data().size(), 0));
      rebuilt += chunk.data();
    }
    EXPECT_EQ(rebuilt, payload) << chunk_bytes;
    EXPECT_EQ(writer->FillChunk(writer->num_chunks(), &chunk).code(),
              StatusCode::kOutOfRange);
    EXPECT_EQ(writer->commit().num_chunks(), writer->num_chunks());
  }
  EXPECT_EQ(UpdateStreamWriter::Start(leaves, 1, {.chunk_bytes = 0}, nullptr)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(UpdateStreamBuilderTest, NonFiniteWeightsAreNeverSent) {
  ParamLeaves leaves = AllocateOrDie(MixedSpecs());
  leaves.F32(2)[70000 % 65537] = INFINITY;
  auto writer = UpdateStreamWriter::Start(leaves, 1, {}, nullptr);
  EXPECT_EQ(writer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(writer.status().message().find("b.weight"), std::string::npos);
}

// The trainer's side and the engine's side in one process, float32 and
// BF16: after the stream the engine holds exactly the trainer's bytes.
class UpdateStreamInProcessTest : public ::testing::TestWithParam<DType> {};

TEST_P(UpdateStreamInProcessTest, EngineHoldsTheTrainerWeightsAfterTheStream) {
  const DType dtype = GetParam();
  auto rollout = MakeMesh(2, "rollout");
  auto actor = MakeMesh(1, "actor");
  EngineOptions options = testing::StoriesOptions("dummy");
  options.model.dtype = std::string(DTypeFlagName(dtype));
  auto engine = testing::MakeEngine(options, rollout.get());
  ASSERT_NE(engine, nullptr);
  ASSERT_EQ(engine->weight_dtype(), dtype);
  // The trainer's weights: the real checkpoint, in the engine's dtype.
  LoadedModel loaded = testing::LoadStories();
  ParamLeaves trainer = AllocateOrDie(engine->weight_specs());
  ASSERT_TRUE(ConvertLeaves(loaded.weights, trainer, actor.get()).ok());

  UpdateStreamReceiver receiver(engine.get(), rollout.get());
  auto applied = SendUpdateStream(trainer, 1, {.chunk_bytes = 10007},
                                  actor.get(), receiver);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->version, 1u);
  EXPECT_EQ(applied->bytes_copied, trainer.total_bytes());
  EXPECT_EQ(engine->WeightsChecksum()->content_hash, ContentHash(trainer));
  EXPECT_EQ(receiver.status().streams_committed, 1);
  if (dtype == DType::kF32) {
    auto r = engine->Generate(testing::GreedyText(
        "Once upon a time", testing::GoldenContinuation().size()));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->samples[0].token_ids, testing::GoldenContinuation());
  }
  // A second push of the same version is refused at begin, nothing sent.
  EXPECT_EQ(
      SendUpdateStream(trainer, 1, {}, actor.get(), receiver).status().code(),
      StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine->Stats().weight_version, 1u);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, UpdateStreamInProcessTest,
                         ::testing::Values(DType::kF32, DType::kBF16),
                         [](const auto& info) {
                           return std::string(DTypeFlagName(info.param));
                         });

}  // namespace
}  // namespace rlrt
