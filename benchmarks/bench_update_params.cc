// bench_update_params: how close a weight update comes to a plain memcpy.
//
// For parameter lists of 4 MB, 64 MB and 512 MB (Qwen3-shaped, F32):
//  - BM_Memcpy: one memcpy of the same bytes, single-threaded (the limit);
//  - BM_ApplyInProcess: validate + copy from a built message into the leaves,
//    on a rollout mesh of 1 and of all devices;
//  - BM_SerializedApply: serialize + parse + validate + copy;
//  - BM_Build: trainer-side build of the message.
// Each timed benchmark also times a memcpy of the same bytes in the same
// iteration (untimed by the framework) and reports the ratio of the two as
// the counter `ratio_to_memcpy`, so noise hits both alike. Quote medians:
//   bench_update_params --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <glog/logging.h>

#include <chrono>
#include <cstring>
#include <memory>

#include "base/timing.h"
#include "models/config/param_budget.h"
#include "models/leaf_init.h"
#include "models/page_arena.h"
#include "models/param_leaves.h"
#include "partition/device.h"
#include "partition/mesh.h"
#include "sampler/update_apply.h"
#include "trainer_bridge/update_builder.h"

namespace rlrt {
namespace {

std::unique_ptr<Mesh> MeshOf(int devices) {
  auto all = DiscoverLocalDevices();
  CHECK(all.ok()) << all.status();
  std::vector<Device> picked(
      all->begin(), all->begin() + std::min<size_t>(devices, all->size()));
  auto mesh = Mesh::Create("rollout", picked);
  CHECK(mesh.ok()) << mesh.status();
  return std::move(mesh).value();
}

// A fresh source list, a target, a built message and memcpy buffers of the
// same byte count, all touched once so no timed region pays page faults.
struct Fixture {
  explicit Fixture(int64_t bytes) {
    auto shape = ConfigForParamBudget(bytes / 4);
    CHECK(shape.ok()) << shape.status();
    const auto specs = LeafSpecsFor(*shape);
    source = std::make_unique<ParamLeaves>(
        std::move(ParamLeaves::Allocate(specs)).value());
    target = std::make_unique<ParamLeaves>(
        std::move(ParamLeaves::Allocate(specs)).value());
    CHECK(FillDummy(*source, 1).ok());
    CHECK(FillDummy(*target, 2).ok());
    CHECK(BuildUpdateParams(*source, 1, {}, nullptr, &update).ok());
    copy_src = std::move(PageArena::Create(source->total_bytes())).value();
    copy_dst = std::move(PageArena::Create(source->total_bytes())).value();
    std::memset(copy_src.data(), 1, source->total_bytes());
    std::memset(copy_dst.data(), 2, source->total_bytes());
  }

  double TimeMemcpy() {
    const auto t0 = SteadyClock::now();
    std::memcpy(copy_dst.data(), copy_src.data(), source->total_bytes());
    benchmark::ClobberMemory();
    return SecondsBetween(t0, SteadyClock::now());
  }

  std::unique_ptr<ParamLeaves> source;
  std::unique_ptr<ParamLeaves> target;
  proto::UpdateParams update;
  PageArena copy_src;
  PageArena copy_dst;
};

void Report(benchmark::State& state, const Fixture& f, double timed,
            double memcpy_total) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          f.source->total_bytes());
  state.counters["ratio_to_memcpy"] = timed / memcpy_total;
  state.counters["memcpy_ms"] = 1e3 * memcpy_total / state.iterations();
  state.counters["MB"] = f.source->total_bytes() / 1e6;
}

void BM_Memcpy(benchmark::State& state) {
  Fixture f(state.range(0) << 20);
  double total = 0;
  for (auto _ : state) {
    const double s = f.TimeMemcpy();
    state.SetIterationTime(s);
    total += s;
  }
  Report(state, f, total, total);
}

void BM_ApplyInProcess(benchmark::State& state) {
  Fixture f(state.range(0) << 20);
  auto mesh = MeshOf(static_cast<int>(state.range(1)));
  uint64_t version = 1;
  double timed = 0, memcpy_total = 0;
  for (auto _ : state) {
    memcpy_total += f.TimeMemcpy();
    f.update.set_version(version++);
    const auto t0 = SteadyClock::now();
    StatusOr<ApplyReport> r =
        ApplyUpdateParams(f.update, *f.target, mesh.get());
    const double s = SecondsBetween(t0, SteadyClock::now());
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    state.SetIterationTime(s);
    timed += s;
  }
  Report(state, f, timed, memcpy_total);
  state.counters["workers"] = mesh->size();
}

void BM_SerializedApply(benchmark::State& state) {
  Fixture f(state.range(0) << 20);
  auto mesh = MeshOf(static_cast<int>(state.range(1)));
  std::string wire;
  proto::UpdateParams scratch;
  uint64_t version = 1;
  // Steady state: the wire buffer and the scratch message keep their
  // capacity from one update to the next, as in a long-running receiver.
  f.update.set_version(version++);
  f.update.SerializeToString(&wire);
  CHECK(
      ApplySerializedUpdateParams(wire, &scratch, *f.target, mesh.get()).ok());
  double timed = 0, memcpy_total = 0;
  for (auto _ : state) {
    memcpy_total += f.TimeMemcpy();
    f.update.set_version(version++);
    const auto t0 = SteadyClock::now();
    f.update.SerializeToString(&wire);
    StatusOr<ApplyReport> r =
        ApplySerializedUpdateParams(wire, &scratch, *f.target, mesh.get());
    const double s = SecondsBetween(t0, SteadyClock::now());
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    state.SetIterationTime(s);
    timed += s;
  }
  Report(state, f, timed, memcpy_total);
  state.counters["workers"] = mesh->size();
}

void BM_Build(benchmark::State& state) {
  Fixture f(state.range(0) << 20);
  auto mesh = MeshOf(static_cast<int>(state.range(1)));
  uint64_t version = 1;
  double timed = 0, memcpy_total = 0;
  for (auto _ : state) {
    memcpy_total += f.TimeMemcpy();
    const auto t0 = SteadyClock::now();
    Status s =
        BuildUpdateParams(*f.source, version++, {}, mesh.get(), &f.update);
    const double t = SecondsBetween(t0, SteadyClock::now());
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    state.SetIterationTime(t);
    timed += t;
  }
  Report(state, f, timed, memcpy_total);
  state.counters["workers"] = mesh->size();
}

void Sizes(benchmark::internal::Benchmark* b, bool with_workers) {
  const int cores = static_cast<int>(DiscoverLocalDevices()->size());
  for (int64_t mb : {4, 64, 512}) {
    if (!with_workers) {
      b->Args({mb});
      continue;
    }
    b->Args({mb, 1});
    if (cores > 1) b->Args({mb, cores});
  }
  b->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
}

BENCHMARK(BM_Memcpy)->Apply([](auto* b) { Sizes(b, false); })
    -> ArgNames({"MB"});
BENCHMARK(BM_ApplyInProcess)
    ->Apply([](auto* b) { Sizes(b, true); }) -> ArgNames({"MB", "workers"});
BENCHMARK(BM_SerializedApply)
    ->Apply([](auto* b) { Sizes(b, true); }) -> ArgNames({"MB", "workers"});
BENCHMARK(BM_Build)->Apply([](auto* b) { Sizes(b, true); })
    -> ArgNames({"MB", "workers"});

}  // namespace
}  // namespace rlrt

BENCHMARK_MAIN();
