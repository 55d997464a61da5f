// Model work stays on the rollout mesh: the engine's threads may only run on
// rollout cores, and the actor mesh's workers do no work while it generates.
#include <gtest/gtest.h>
#include <sched.h>

#include <fstream>
#include <set>
#include <thread>

#include "partition/partition_spec.h"
#include "sampler/engine.h"
#include "sampler/engine_test_util.h"

namespace rlrt {
namespace {

std::set<int> ThreadCores(pid_t tid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(tid, sizeof(set), &set), 0);
  std::set<int> cores;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cores.insert(c);
  return cores;
}

// Nanoseconds the thread has run on a CPU (first field of schedstat).
int64_t ThreadCpuNs(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/schedstat");
  int64_t ns = -1;
  in >> ns;
  return ns;
}

int64_t CpuNs(const std::vector<pid_t>& tids) {
  int64_t total = 0;
  for (pid_t t : tids) total += ThreadCpuNs(t);
  return total;
}

TEST(EnginePlacementTest, ModelWorkRunsOnlyOnRolloutCores) {
  auto cores = AffinityCores();
  ASSERT_TRUE(cores.ok());
  if (cores->size() < 2) GTEST_SKIP() << "needs two cores";
  auto devices = DiscoverLocalDevices(0);
  ASSERT_TRUE(devices.ok());
  auto partition = Partition::Create("rollout=1,actor=rest", *devices);
  ASSERT_TRUE(partition.ok()) << partition.status();
  Mesh& rollout = partition->rollout();
  Mesh& actor = partition->actor();
  auto engine = testing::MakeEngine(testing::StoriesOptions(), &rollout);
  ASSERT_NE(engine, nullptr);

  while (engine->scheduler_thread_id() == 0) std::this_thread::yield();
  const std::set<int> rollout_cores = {rollout.devices()[0].core};
  EXPECT_EQ(ThreadCores(engine->scheduler_thread_id()), rollout_cores);
  for (pid_t tid : rollout.WorkerThreadIds())
    EXPECT_EQ(ThreadCores(tid), rollout_cores);

  const int64_t actor_before = CpuNs(actor.WorkerThreadIds());
  const int64_t rollout_before = CpuNs(rollout.WorkerThreadIds()) +
                                 ThreadCpuNs(engine->scheduler_thread_id());
  GenerateRequest r = testing::GreedyText("Once upon a time", 200);
  r.n = 8;
  r.sampling.temperature = 1.0f;
  ASSERT_TRUE(engine->Generate(r).ok());
  const int64_t actor_ns = CpuNs(actor.WorkerThreadIds()) - actor_before;
  const int64_t rollout_ns = CpuNs(rollout.WorkerThreadIds()) +
                             ThreadCpuNs(engine->scheduler_thread_id()) -
                             rollout_before;
  EXPECT_GT(rollout_ns, 20'000'000);  // The work happened, over there...
  EXPECT_LT(actor_ns, 2'000'000);     // ...and not here.
}

}  // namespace
}  // namespace rlrt
