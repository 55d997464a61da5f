// The Qwen3-0.6B shape pushed from a trainer to a rollout server over HTTP,
// in float32 (2.4 GB: more than one protobuf message can carry) and BF16
// (1.2 GB), through the client pool as the RL loop pushes it: a stream of
// 256 MiB chunks, staged by the server and applied whole at commit. The
// server must then hold exactly the trainer's bytes (the push verifies the
// content hash itself; the test reads the engine's too) and sample with
// them. Several GB of memory and a minute or so: Release only ("large").
#include <glog/logging.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/format.h"
#include "base/timing.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "models/test_util.h"
#include "sampler/engine.h"
#include "sampler/server/rollout_server.h"
#include "trainer_bridge/remote/remote_rollouts.h"

namespace rlrt {
namespace {

class LargePushTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LargePushTest, Qwen3_0_6BShapeReachesTheServerWhole) {
  auto rollout = testing::MakeMesh(1, "rollout");
  auto actor = testing::MakeMesh(1, "actor");
  EngineOptions eo;
  eo.model.preset = "qwen3-0.6b";
  eo.model.load_format = "dummy";
  eo.model.seed = 1;
  eo.model.dtype = GetParam();
  eo.max_running_requests = 2;
  eo.max_total_tokens = 256;
  eo.context_length = 128;
  eo.max_prefill_tokens = 64;
  auto engine = SamplerEngine::Create(eo, rollout.get());
  ASSERT_TRUE(engine.ok()) << engine.status();
  RolloutServerOptions so;
  so.port = 0;
  auto server = RolloutServer::Create(engine->get(), rollout.get(), so);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());

  // The trainer's weights: other dummy values in the same structure.
  auto trainer = ParamLeaves::Allocate((*engine)->weight_specs());
  ASSERT_TRUE(trainer.ok());
  ASSERT_TRUE(FillDummy(*trainer, 2, actor.get()).ok());
  const uint64_t want = ContentHash(*trainer, actor.get());
  const bool f32 = GetParam() == "float32";
  EXPECT_EQ(trainer->total_bytes() > (size_t{2} << 30), f32)
      << "the float32 push must not fit one protobuf message";

  RolloutClientOptions co;
  co.urls = {"http://127.0.0.1:" + std::to_string((*server)->port())};
  auto remote = RemoteRollouts::Create(co, actor.get());
  ASSERT_TRUE(remote.ok()) << remote.status();
  const SteadyClock::time_point start = SteadyClock::now();
  auto pushed = (*remote)->PushWeights(*trainer, 1);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  const double seconds = MillisecondsSince(start) / 1000;
  EXPECT_EQ(pushed->content_hash, want);
  EXPECT_EQ((*engine)->WeightsChecksum()->content_hash, want);
  EXPECT_EQ((*engine)->Stats().weight_version, 1u);
  LOG(INFO) << nlohmann::json{
      {"phase", "large_push"},
      {"dtype", GetParam()},
      {"bytes", trainer->total_bytes()},
      {"seconds", seconds},
      {"build_ms", pushed->build_ms},
      {"apply_ms", pushed->apply_ms},
      {"verify_ms", pushed->verify_ms},
      {"gb_per_s",
       trainer->total_bytes() / seconds /
           1e9}}.dump();

  // The server samples with them, under the new version.
  GenerateRequest r;
  r.input_ids = {9707, 11, 1879};
  r.stop.max_new_tokens = 2;
  r.ignore_eos = true;
  auto result = (*engine)->Generate(r);
  ASSERT_TRUE(result.ok()) << result.status();
  for (uint64_t v : result->samples[0].weight_versions) EXPECT_EQ(v, 1u);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LargePushTest,
                         ::testing::Values("float32", "bfloat16"));

}  // namespace
}  // namespace rlrt
