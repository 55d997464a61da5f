#include "partition/mesh.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

// Counts every heap allocation in this test binary, to check that
// ParallelFor allocates nothing. Not under clang's ThreadSanitizer: its
// static runtime defines every operator new and delete in one object, so a
// replacement collides at link time (gcc's shared runtime does not).
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RLRT_CANNOT_REPLACE_NEW 1
#endif
#endif

namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

#ifndef RLRT_CANNOT_REPLACE_NEW
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// GCC flags free() here once it inlines these into a new/delete pair, though
// the pairing is right: our operator new allocates with malloc.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop
#endif  // RLRT_CANNOT_REPLACE_NEW

namespace rlrt {
namespace {

using std::chrono::steady_clock;
constexpr auto kTimeout = std::chrono::seconds(10);

std::vector<Device> RealDevices() {
  StatusOr<std::vector<Device>> devices = DiscoverLocalDevices();
  EXPECT_TRUE(devices.ok()) << devices.status();
  return devices.ok() ? *devices : std::vector<Device>{};
}

std::vector<Device> VirtualDevices(int n) {
  StatusOr<std::vector<Device>> devices = DiscoverLocalDevices(n);
  EXPECT_TRUE(devices.ok()) << devices.status();
  return devices.ok() ? *devices : std::vector<Device>{};
}

std::unique_ptr<Mesh> MakeMesh(std::vector<Device> devices,
                               std::vector<MeshAxis> axes = {}) {
  StatusOr<std::unique_ptr<Mesh>> mesh =
      Mesh::Create("test", std::move(devices), std::move(axes));
  EXPECT_TRUE(mesh.ok()) << mesh.status();
  return mesh.ok() ? std::move(mesh).value() : nullptr;
}

// Waits for flag with a deadline, so a missing hand-off fails instead of
// hanging.
bool WaitFor(const std::atomic<bool>& flag) {
  const auto deadline = steady_clock::now() + kTimeout;
  while (!flag.load()) {
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(MeshTest, EachWorkerIsPinnedToItsDeviceCore) {
  for (std::vector<Device> devices : {RealDevices(), VirtualDevices(8)}) {
    std::unique_ptr<Mesh> mesh = MakeMesh(devices);
    ASSERT_NE(mesh, nullptr);
    std::vector<cpu_set_t> affinity(mesh->size());
    std::vector<int> cpu(mesh->size(), -1);
    ASSERT_TRUE(mesh->RunOnEachWorker([&](const Shard& shard) {
                      CPU_ZERO(&affinity[shard.worker]);
                      sched_getaffinity(0, sizeof(cpu_set_t),
                                        &affinity[shard.worker]);
                      cpu[shard.worker] = sched_getcpu();
                      return OkStatus();
                    })
                    .ok());
    for (int w = 0; w < mesh->size(); ++w) {
      EXPECT_EQ(CPU_COUNT(&affinity[w]), 1) << "worker " << w;
      EXPECT_TRUE(CPU_ISSET(devices[w].core, &affinity[w])) << "worker " << w;
      EXPECT_EQ(cpu[w], devices[w].core) << "worker " << w;
    }
  }
}

TEST(MeshTest, ParallelForCoversTheRangeWithBalancedContiguousShards) {
  for (std::vector<Device> devices : {RealDevices(), VirtualDevices(1),
                                      VirtualDevices(3), VirtualDevices(8)}) {
    std::unique_ptr<Mesh> mesh = MakeMesh(devices);
    ASSERT_NE(mesh, nullptr);
    const int size = mesh->size();
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{size - 1}, int64_t{size},
                      int64_t{1000}}) {
      SCOPED_TRACE("size " + std::to_string(size) + ", n " + std::to_string(n));
      std::vector<std::atomic<int>> hits(n);
      std::vector<Shard> shards(size, Shard{-1, -1, -1});
      ASSERT_TRUE(mesh->ParallelFor(n,
                                    [&](const Shard& shard) {
                                      shards[shard.worker] = shard;
                                      for (int64_t i = shard.begin;
                                           i < shard.end; ++i) {
                                        hits[i].fetch_add(1);
                                      }
                                      return OkStatus();
                                    })
                      .ok());
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << i;

      // Expected split, computed independently: sizes ceil or floor of
      // n / size, larger ones first, laid end to end.
      int64_t next = 0;
      for (int w = 0; w < size; ++w) {
        const int64_t expected = n / size + (w < n % size ? 1 : 0);
        if (expected == 0) {
          EXPECT_EQ(shards[w].worker, -1) << "empty shard " << w << " ran";
          continue;
        }
        EXPECT_EQ(shards[w].worker, w);
        EXPECT_EQ(shards[w].begin, next);
        EXPECT_EQ(shards[w].end, next + expected);
        next += expected;
      }
      EXPECT_EQ(next, n);
    }
  }
}

TEST(MeshTest, NegativeCountIsAnError) {
  std::unique_ptr<Mesh> mesh = MakeMesh(RealDevices());
  ASSERT_NE(mesh, nullptr);
  bool ran = false;
  const Status status = mesh->ParallelFor(-1, [&](const Shard&) {
    ran = true;
    return OkStatus();
  });
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(ran);
}

TEST(MeshTest, WorkRunsOnlyOnTheMeshWorkers) {
  std::vector<Device> devices = VirtualDevices(4);
  std::unique_ptr<Mesh> mesh = MakeMesh(devices);
  ASSERT_NE(mesh, nullptr);
  const std::vector<pid_t> tids = mesh->WorkerThreadIds();
  ASSERT_EQ(tids.size(), 4u);
  EXPECT_EQ(std::set<pid_t>(tids.begin(), tids.end()).size(), 4u);
  const pid_t caller = gettid();
  EXPECT_FALSE(mesh->IsOwnWorkerThread());

  for (int round = 0; round < 50; ++round) {
    std::vector<pid_t> seen_tid(1000, 0);
    std::vector<int> seen_cpu(1000, -1);
    std::vector<int> seen_worker(1000, -1);
    std::vector<int> own(4, 0);  // Not vector<bool>: workers write in parallel.
    ASSERT_TRUE(
        mesh->ParallelFor(1000,
                          [&](const Shard& shard) {
                            own[shard.worker] = mesh->IsOwnWorkerThread();
                            for (int64_t i = shard.begin; i < shard.end; ++i) {
                              seen_tid[i] = gettid();
                              seen_cpu[i] = sched_getcpu();
                              seen_worker[i] = shard.worker;
                            }
                            return OkStatus();
                          })
            .ok());
    for (int i = 0; i < 1000; ++i) {
      const int w = seen_worker[i];
      ASSERT_GE(w, 0);
      EXPECT_NE(seen_tid[i], caller);
      EXPECT_EQ(seen_tid[i], tids[w]);
      EXPECT_EQ(seen_cpu[i], devices[w].core);
    }
    for (int w = 0; w < 4; ++w) EXPECT_TRUE(own[w]);
  }
}

TEST(MeshTest, ShardErrorsComeBackAndTheMeshStaysUsable) {
  std::unique_ptr<Mesh> mesh = MakeMesh(VirtualDevices(4));
  ASSERT_NE(mesh, nullptr);
  std::atomic<int> ran{0};
  // The first error in worker order wins, and every shard still runs.
  Status status = mesh->RunOnEachWorker([&](const Shard& shard) {
    ran.fetch_add(1);
    if (shard.worker == 1) return NotFoundError("one");
    if (shard.worker == 3) return AbortedError("three");
    return OkStatus();
  });
  EXPECT_EQ(status, NotFoundError("one"));
  EXPECT_EQ(ran.load(), 4);

  status = mesh->RunOnEachWorker([&](const Shard& shard) -> Status {
    if (shard.worker == 2) throw std::runtime_error("boom");
    return OkStatus();
  });
  EXPECT_EQ(status, InternalError("boom"));

  status = mesh->RunOnEachWorker([&](const Shard& shard) -> Status {
    if (shard.worker == 0) throw 42;
    return OkStatus();
  });
  EXPECT_EQ(status, InternalError("unknown exception"));

  // Earlier errors do not leak into later calls.
  std::atomic<int64_t> sum{0};
  status = mesh->ParallelFor(100, [&](const Shard& shard) {
    for (int64_t i = shard.begin; i < shard.end; ++i) sum.fetch_add(i);
    return OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(sum.load(), 99 * 100 / 2);
}

TEST(MeshTest, NestedParallelForFromAWorkerRunsInline) {
  std::unique_ptr<Mesh> mesh = MakeMesh(VirtualDevices(3));
  ASSERT_NE(mesh, nullptr);
  std::unique_ptr<Mesh> other = MakeMesh(VirtualDevices(2));
  ASSERT_NE(other, nullptr);
  std::vector<int64_t> sums(3, 0);
  std::vector<int> same_thread(3, 0);
  std::vector<int> own_of_other(3, 1);
  const Status status = mesh->RunOnEachWorker([&](const Shard& outer) {
    const pid_t tid = gettid();
    bool inline_only = true;
    own_of_other[outer.worker] = other->IsOwnWorkerThread();
    Status inner = mesh->ParallelFor(100, [&](const Shard& shard) {
      inline_only = inline_only && gettid() == tid;
      for (int64_t i = shard.begin; i < shard.end; ++i) {
        sums[outer.worker] += i;
      }
      return shard.worker == 2 ? AbortedError("inner") : OkStatus();
    });
    same_thread[outer.worker] = inline_only;
    return inner;
  });
  EXPECT_EQ(status, AbortedError("inner"));
  for (int w = 0; w < 3; ++w) {
    EXPECT_EQ(sums[w], 99 * 100 / 2) << w;
    EXPECT_TRUE(same_thread[w]) << w;
    EXPECT_FALSE(own_of_other[w]) << w;
  }
}

TEST(MeshTest, ConcurrentCallersAllComplete) {
  std::unique_ptr<Mesh> mesh = MakeMesh(RealDevices());
  ASSERT_NE(mesh, nullptr);
  constexpr int kCallers = 4;
  constexpr int kRounds = 200;
  std::vector<int> failures(kCallers, 0);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < kRounds; ++round) {
        const int64_t n = 100 + 37 * c + round;
        std::atomic<int64_t> sum{0};
        const Status status = mesh->ParallelFor(n, [&](const Shard& shard) {
          for (int64_t i = shard.begin; i < shard.end; ++i) {
            sum.fetch_add(i * (c + 1));
          }
          return OkStatus();
        });
        if (!status.ok() || sum.load() != (n - 1) * n / 2 * (c + 1)) {
          ++failures[c];
        }
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  for (int c = 0; c < kCallers; ++c) EXPECT_EQ(failures[c], 0) << c;
}

// Mesh A's only shard blocks until mesh B's work sets a flag, so the test
// finishes only if B runs while A is still busy.
TEST(MeshTest, TwoBusyMeshesBothProgress) {
  std::vector<Device> devices = VirtualDevices(2);
  std::unique_ptr<Mesh> a = MakeMesh({devices[0]});
  std::unique_ptr<Mesh> b = MakeMesh({devices[1]});
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);

  std::atomic<bool> a_started{false};
  std::atomic<bool> a_finished{false};
  std::atomic<bool> b_ran{false};
  Status a_status = InternalError("not run");
  std::thread a_caller([&] {
    a_status = a->ParallelFor(1, [&](const Shard&) {
      a_started.store(true);
      const bool saw_b = WaitFor(b_ran);
      a_finished.store(true);
      return saw_b ? OkStatus() : AbortedError("mesh B never ran");
    });
  });

  ASSERT_TRUE(WaitFor(a_started));
  bool a_busy_during_b = false;
  const Status b_status = b->ParallelFor(1, [&](const Shard&) {
    a_busy_during_b = !a_finished.load();
    b_ran.store(true);
    return OkStatus();
  });
  a_caller.join();
  EXPECT_TRUE(b_status.ok()) << b_status;
  EXPECT_TRUE(a_status.ok()) << a_status;
  EXPECT_TRUE(a_busy_during_b);
}

TEST(MeshTest, EightVirtualDevicesOnTheRealCores) {
  std::vector<Device> devices = VirtualDevices(8);
  std::unique_ptr<Mesh> mesh = MakeMesh(devices);
  ASSERT_NE(mesh, nullptr);
  EXPECT_EQ(mesh->size(), 8);
  const std::vector<pid_t> tids = mesh->WorkerThreadIds();
  EXPECT_EQ(std::set<pid_t>(tids.begin(), tids.end()).size(), 8u);
  for (int round = 0; round < 100; ++round) {
    std::atomic<int64_t> sum{0};
    ASSERT_TRUE(mesh->ParallelFor(1000,
                                  [&](const Shard& shard) {
                                    for (int64_t i = shard.begin; i < shard.end;
                                         ++i) {
                                      sum.fetch_add(i);
                                    }
                                    return OkStatus();
                                  })
                    .ok());
    ASSERT_EQ(sum.load(), 999 * 1000 / 2);
  }
}

TEST(MeshTest, ParallelForAllocatesNothing) {
#ifdef RLRT_CANNOT_REPLACE_NEW
  GTEST_SKIP() << "allocations are not counted under clang's TSan; the "
                  "Release and ASan runs check this";
#endif
  std::unique_ptr<Mesh> mesh = MakeMesh(VirtualDevices(4));
  ASSERT_NE(mesh, nullptr);
  std::atomic<int64_t> sum{0};
  auto work = [&](const Shard& shard) {
    for (int64_t i = shard.begin; i < shard.end; ++i) sum.fetch_add(i);
    return OkStatus();
  };
  ASSERT_TRUE(mesh->ParallelFor(1000, work).ok());  // Warm up.
  const int64_t before = g_allocations.load();
  for (int round = 0; round < 100; ++round) {
    ASSERT_TRUE(mesh->ParallelFor(1000, work).ok());
  }
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_EQ(sum.load(), 101 * (999 * 1000 / 2));
}

TEST(MeshTest, AxesDefaultAndValidation) {
  std::vector<Device> four = VirtualDevices(4);
  std::unique_ptr<Mesh> mesh = MakeMesh(four);
  ASSERT_NE(mesh, nullptr);
  ASSERT_EQ(mesh->axes().size(), 1u);
  EXPECT_EQ(mesh->axes()[0].name, "tensor");
  EXPECT_EQ(mesh->axes()[0].size, 4);
  EXPECT_EQ(mesh->name(), "test");
  EXPECT_EQ(mesh->devices().size(), 4u);

  mesh = MakeMesh(four, {{"data", 2}, {"tensor", 2}});
  ASSERT_NE(mesh, nullptr);
  EXPECT_EQ(mesh->axes()[1].name, "tensor");

  const std::vector<std::vector<MeshAxis>> bad_axes = {
      {{"data", 2}, {"tensor", 3}},  // Product 6.
      {{"data", 4}, {"tensor", 0}},
      {{"data", -4}, {"tensor", -1}},
      {{"Data", 4}},
      {{"", 4}},
      {{"data", 2}, {"data", 2}},
  };
  for (const std::vector<MeshAxis>& axes : bad_axes) {
    StatusOr<std::unique_ptr<Mesh>> bad = Mesh::Create("bad", four, axes);
    ASSERT_FALSE(bad.ok()) << axes[0].name;
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(MeshTest, BadDevicesAreRejected) {
  StatusOr<std::unique_ptr<Mesh>> empty = Mesh::Create("empty", {});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);

  StatusOr<std::unique_ptr<Mesh>> huge =
      Mesh::Create("huge", VirtualDevices(kMaxMeshSize + 1));
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kInvalidArgument);

  std::vector<Device> twice = {VirtualDevices(1)[0], VirtualDevices(1)[0]};
  EXPECT_FALSE(Mesh::Create("twice", twice).ok());
}

TEST(MeshTest, PinningFailureIsReported) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  int outside = CPU_SETSIZE - 1;
  while (outside >= 0 && CPU_ISSET(outside, &set)) --outside;
  ASSERT_GE(outside, 0);
  std::vector<Device> devices = VirtualDevices(2);
  devices[1].core = outside;
  StatusOr<std::unique_ptr<Mesh>> mesh = Mesh::Create("unpinnable", devices);
  ASSERT_FALSE(mesh.ok());
  EXPECT_NE(mesh.status().message().find("core " + std::to_string(outside)),
            std::string::npos)
      << mesh.status();
}

}  // namespace
}  // namespace rlrt
