// bench_update_params: how close a weight update comes to a plain memcpy.
//
// For parameter lists of 4 MB, 64 MB and 512 MB (Qwen3-shaped, F32):
//  - BM_Memcpy: one memcpy of the same bytes, single-threaded (the limit);
//  - BM_ApplyInProcess: validate (the payload's hash and NaN scan
//    included) + copy from a built message into the leaves, on a rollout
//    mesh of 1 and of all devices, also for the Qwen3-0.6B shape in float32
//    and BF16 ("MB" 0);
//  - BM_SerializedApply: serialize + parse + validate + copy;
//  - BM_Build: trainer-side build of the message;
//  - BM_Sync: what the GRPO loop does after each step (WeightSync::Push):
//    the trainer's scan of its leaves (hash, NaN check), then the engine's
//    copy straight from them, which hashes what it writes (the
//    verification), here also for the real Qwen3-0.6B shape (2.4 GB, "MB"
//    argument 0). Its `ratio_to_mesh_memcpy` compares it with a memcpy of
//    the same bytes split across the same mesh, measured alongside.
//  - BM_HttpStreamPush: the Qwen3-0.6B shape pushed to a rollout server on
//    loopback as the RL loop pushes it (RemoteRollouts::PushWeights: a
//    stream of 256 MiB chunks, staged and committed, then the server's
//    checksum), float32 and BF16; one push per repetition.
//  - BM_AdapterSync: LoRA's sync, the adapter alone (rank 16 on all seven
//    projections of the Qwen3-0.6B shape, 39 MB) into an engine serving the
//    float32 base, in process (WeightSync::PushAdapter) and over HTTP
//    (RemoteRollouts::PushAdapter to a rollout server on loopback). Beside
//    `ratio_to_memcpy` (of the adapter's bytes) it reports
//    `speedup_vs_full_sync`: a full-weight sync of the same engine, the
//    same way, timed in the same run (the second of two), over the adapter
//    sync's mean.
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
#include <optional>

#include "base/timing.h"
#include "models/config/model_config.h"
#include "models/config/param_budget.h"
#include "models/leaf_checksum.h"
#include "models/leaf_copy.h"
#include "models/leaf_init.h"
#include "models/leaf_scan.h"
#include "models/lora/lora_adapter.h"
#include "models/page_arena.h"
#include "models/param_leaves.h"
#include "partition/device.h"
#include "partition/mesh.h"
#include "sampler/engine.h"
#include "sampler/server/rollout_server.h"
#include "sampler/update_apply.h"
#include "trainer_bridge/remote/remote_rollouts.h"
#include "trainer_bridge/update_builder.h"
#include "trainer_bridge/weight_sync.h"

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
  // bytes == 0: the Qwen3-0.6B shape; `matrices` is the dtype of its
  // matrices (BF16: the bytes a mixed-precision trainer sends).
  explicit Fixture(int64_t bytes, DType matrices = DType::kF32) {
    auto shape = bytes == 0 ? PresetConfig("qwen3-0.6b")
                            : ConfigForParamBudget(bytes / 4);
    CHECK(shape.ok()) << shape.status();
    const auto specs = LeafSpecsFor(*shape, matrices);
    source = std::make_unique<ParamLeaves>(
        std::move(ParamLeaves::Allocate(specs)).value());
    target = std::make_unique<ParamLeaves>(
        std::move(ParamLeaves::Allocate(specs)).value());
    CHECK(FillDummy(*source, 1).ok());
    CHECK(FillDummy(*target, 2).ok());
    CHECK(BuildUpdateParams(*source, 1, {}, nullptr, &update).ok());
    // The leaves' whole span, alignment gaps included, for TimeMeshMemcpy.
    const size_t last = source->size() - 1;
    const size_t span =
        (source->data(last) - source->data(0)) + source->bytes(last);
    copy_src = std::move(PageArena::Create(span)).value();
    copy_dst = std::move(PageArena::Create(span)).value();
    std::memset(copy_src.data(), 1, span);
    std::memset(copy_dst.data(), 2, span);
  }

  double TimeMemcpy() {
    const auto t0 = SteadyClock::now();
    std::memcpy(copy_dst.data(), copy_src.data(), source->total_bytes());
    benchmark::ClobberMemory();
    return SecondsBetween(t0, SteadyClock::now());
  }

  // The same bytes as one leaf list copied by the mesh's workers.
  double TimeMeshMemcpy(Mesh* mesh) {
    const auto t0 = SteadyClock::now();
    CHECK(CopyLeafBytes(
              *source,
              [&](size_t i) {
                return copy_src.data() + (source->data(i) - source->data(0));
              },
              [&](size_t i) {
                return copy_dst.data() + (source->data(i) - source->data(0));
              },
              mesh)
              .ok());
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
  Fixture f(state.range(0) << 20,
            state.range(2) == 1 ? DType::kBF16 : DType::kF32);
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

void BM_Sync(benchmark::State& state) {
  Fixture f(state.range(0) << 20,
            state.range(2) == 1 ? DType::kBF16 : DType::kF32);
  auto mesh = MeshOf(static_cast<int>(state.range(1)));
  uint64_t version = 1;
  const ParamLeaves& source = *f.source;
  double timed = 0, memcpy_total = 0, mesh_memcpy_total = 0;
  double build_s = 0, apply_s = 0, verify_s = 0;
  for (auto _ : state) {
    memcpy_total += f.TimeMemcpy();
    mesh_memcpy_total += f.TimeMeshMemcpy(mesh.get());
    const auto t0 = SteadyClock::now();
    // As WeightSync::Push does: the trainer's scan, then the copy straight
    // from its leaves, hashing what is written.
    StatusOr<LeafScan> scan = ScanLeaves(
        source, [&](size_t i) { return source.data(i); },
        {.hash = true, .find_non_finite = true}, mesh.get());
    const auto t1 = SteadyClock::now();
    StatusOr<ApplyReport> r = ApplyLeaves(
        source, version++, *f.target, mesh.get(), VersionRule::kNewer,
        {.payload_prechecked = true,
         .expected_content_hash =
             scan.ok() ? scan->content_hash : std::optional<uint64_t>()});
    const auto t2 = SteadyClock::now();
    const auto t3 = t2;  // Verified by the apply's hash of what it wrote.
    if (!scan.ok()) state.SkipWithError(scan.status().ToString().c_str());
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    if (r.ok() && scan.ok() && r->content_hash != scan->content_hash)
      state.SkipWithError("the sampler's hash differs from the trainer's");
    build_s += SecondsBetween(t0, t1);
    apply_s += SecondsBetween(t1, t2);
    verify_s += SecondsBetween(t2, t3);
    state.SetIterationTime(SecondsBetween(t0, t3));
    timed += SecondsBetween(t0, t3);
  }
  Report(state, f, timed, memcpy_total);
  const double n = static_cast<double>(state.iterations());
  state.counters["ratio_to_mesh_memcpy"] = timed / mesh_memcpy_total;
  state.counters["mesh_memcpy_ms"] = 1e3 * mesh_memcpy_total / n;
  state.counters["build_ms"] = 1e3 * build_s / n;
  state.counters["apply_ms"] = 1e3 * apply_s / n;
  state.counters["verify_ms"] = 1e3 * verify_s / n;
  state.counters["workers"] = mesh->size();
}

// An engine serving the Qwen3-0.6B shape (dummy weights) with the smallest
// KV pool: what receives the pushes.
std::unique_ptr<SamplerEngine> Qwen3ShapeEngine(bool bf16, Mesh* mesh) {
  EngineOptions eo;
  eo.model.preset = "qwen3-0.6b";
  eo.model.load_format = "dummy";
  eo.model.dtype = bf16 ? "bfloat16" : "float32";
  eo.max_running_requests = 2;
  eo.max_total_tokens = 256;
  eo.context_length = 128;
  eo.max_prefill_tokens = 64;
  auto engine = SamplerEngine::Create(eo, mesh);
  CHECK(engine.ok()) << engine.status();
  return std::move(engine).value();
}

void BM_HttpStreamPush(benchmark::State& state) {
  const bool bf16 = state.range(0) == 1;
  auto rollout = MeshOf(1);
  auto engine = Qwen3ShapeEngine(bf16, rollout.get());
  RolloutServerOptions so;
  so.port = 0;
  auto server = RolloutServer::Create(engine.get(), rollout.get(), so);
  CHECK(server.ok()) << server.status();
  CHECK((*server)->Start().ok());
  // Only what the push needs (no Fixture: its extra copies would not fit
  // beside the server's weights and staging in float32).
  auto source = ParamLeaves::Allocate(engine->weight_specs());
  CHECK(source.ok()) << source.status();
  CHECK(FillDummy(*source, 2, rollout.get()).ok());
  auto copy_dst = PageArena::Create(source->total_bytes());
  CHECK(copy_dst.ok());
  std::memset(copy_dst->data(), 1, source->total_bytes());
  RolloutClientOptions co;
  co.urls = {"http://127.0.0.1:" + std::to_string((*server)->port())};
  auto remote = RemoteRollouts::Create(co, nullptr);
  CHECK(remote.ok()) << remote.status();
  uint64_t version = 1;
  double timed = 0, memcpy_total = 0, build_s = 0, apply_s = 0;
  for (auto _ : state) {
    const auto m0 = SteadyClock::now();
    size_t at = 0;
    for (size_t i = 0; i < source->size(); ++i) {
      std::memcpy(copy_dst->data() + at, source->data(i), source->bytes(i));
      at += source->bytes(i);
    }
    benchmark::ClobberMemory();
    memcpy_total += SecondsBetween(m0, SteadyClock::now());
    const auto t0 = SteadyClock::now();
    StatusOr<SyncReport> r = (*remote)->PushWeights(*source, version++);
    const double s = SecondsBetween(t0, SteadyClock::now());
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    if (r.ok()) {
      build_s += r->build_ms / 1e3;
      apply_s += r->apply_ms / 1e3;
    }
    state.SetIterationTime(s);
    timed += s;
  }
  const double n = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(n * source->total_bytes()));
  state.counters["ratio_to_memcpy"] = timed / memcpy_total;
  state.counters["memcpy_ms"] = 1e3 * memcpy_total / n;
  state.counters["MB"] = source->total_bytes() / 1e6;
  state.counters["build_ms"] = 1e3 * build_s / n;
  state.counters["transfer_and_apply_ms"] = 1e3 * apply_s / n;
  state.counters["chunks"] =
      static_cast<double>((source->total_bytes() + co.update_chunk_bytes - 1) /
                          co.update_chunk_bytes);
}

void BM_AdapterSync(benchmark::State& state) {
  const bool http = state.range(0) == 1;
  auto rollout = MeshOf(1);
  auto engine = Qwen3ShapeEngine(/*bf16=*/false, rollout.get());
  auto adapter = LoraAdapter::Create(engine->config(),
                                     LoraConfig{.rank = 16, .alpha = 32});
  CHECK(adapter.ok()) << adapter.status();
  CHECK((*adapter)->InitLikePeft(1, rollout.get()).ok());
  CHECK(Perturb((*adapter)->leaves(), 2, 0.01, 1 << 20, rollout.get()).ok());
  const ParamLeaves& leaves = (*adapter)->leaves();
  std::unique_ptr<RolloutServer> server;
  std::unique_ptr<RemoteRollouts> remote;
  std::unique_ptr<WeightSync> local;
  if (http) {
    RolloutServerOptions so;
    so.port = 0;
    server =
        std::move(RolloutServer::Create(engine.get(), nullptr, so)).value();
    CHECK(server->Start().ok());
    RolloutClientOptions co;
    co.urls = {"http://127.0.0.1:" + std::to_string(server->port())};
    remote = std::move(RemoteRollouts::Create(co, nullptr)).value();
  } else {
    local = std::make_unique<WeightSync>(engine.get(), rollout.get());
  }
  auto push = [&](uint64_t version) {
    return http ? remote->PushAdapter(**adapter, "policy", version)
                : local->PushAdapter(**adapter, "policy", version);
  };
  // The full-weight sync of the same engine, the same way, once.
  double full_s = 0;
  {
    auto source = ParamLeaves::Allocate(engine->weight_specs());
    CHECK(source.ok());
    CHECK(FillDummy(*source, 3, rollout.get()).ok());
    // The second push is timed: the first also faults in the message.
    for (uint64_t version : {1, 2}) {
      const auto t0 = SteadyClock::now();
      StatusOr<SyncReport> full = http ? remote->PushWeights(*source, version)
                                       : local->Push(*source, version);
      full_s = SecondsBetween(t0, SteadyClock::now());
      CHECK(full.ok()) << full.status();
    }
  }
  auto copy_src = PageArena::Create(leaves.total_bytes());
  auto copy_dst = PageArena::Create(leaves.total_bytes());
  CHECK(copy_src.ok() && copy_dst.ok());
  std::memset(copy_src->data(), 1, leaves.total_bytes());
  std::memset(copy_dst->data(), 2, leaves.total_bytes());
  uint64_t version = 1;
  CHECK(push(version++).ok());  // Creates the adapter on the engine.
  double timed = 0, memcpy_total = 0, stall_s = 0;
  for (auto _ : state) {
    const auto m0 = SteadyClock::now();
    std::memcpy(copy_dst->data(), copy_src->data(), leaves.total_bytes());
    benchmark::ClobberMemory();
    memcpy_total += SecondsBetween(m0, SteadyClock::now());
    const auto t0 = SteadyClock::now();
    StatusOr<SyncReport> r = push(version++);
    const double t = SecondsBetween(t0, SteadyClock::now());
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    if (r.ok()) stall_s += r->stall_ms / 1e3;
    state.SetIterationTime(t);
    timed += t;
  }
  const double n = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(n * leaves.total_bytes()));
  state.counters["ratio_to_memcpy"] = timed / memcpy_total;
  state.counters["speedup_vs_full_sync"] = full_s / (timed / n);
  state.counters["full_sync_ms"] = 1e3 * full_s;
  state.counters["stall_ms"] = 1e3 * stall_s / n;
  state.counters["MB"] = leaves.total_bytes() / 1e6;
  double full_bytes = 0;
  for (const LeafSpec& spec : engine->weight_specs())
    full_bytes += static_cast<double>(spec.NumBytes());
  state.counters["full_MB"] = full_bytes / 1e6;
}

// One read of the payload on one worker: the content hash, the NaN and
// infinity check, or both (range(1) = 1, 2, 3), against a memcpy.
void BM_Scan(benchmark::State& state) {
  Fixture f(state.range(0) << 20);
  const ScanOptions options{.hash = (state.range(1) & 1) != 0,
                            .find_non_finite = (state.range(1) & 2) != 0};
  double timed = 0, memcpy_total = 0;
  for (auto _ : state) {
    memcpy_total += f.TimeMemcpy();
    const auto t0 = SteadyClock::now();
    StatusOr<LeafScan> scan = ScanLeaves(
        *f.source, [&](size_t i) { return f.source->data(i); }, options,
        nullptr);
    const double s = SecondsBetween(t0, SteadyClock::now());
    if (!scan.ok()) state.SkipWithError(scan.status().ToString().c_str());
    benchmark::DoNotOptimize(scan);
    state.SetIterationTime(s);
    timed += s;
  }
  Report(state, f, timed, memcpy_total);
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

// Sizes(b, true) with a third argument 0, plus the Qwen3-0.6B shape ("MB"
// 0) in float32 and BF16.
void SizesAndQwen3Shape(benchmark::internal::Benchmark* b) {
  const int cores = static_cast<int>(DiscoverLocalDevices()->size());
  for (int64_t mb : {4, 64, 512}) {
    b->Args({mb, 1, 0});
    if (cores > 1) b->Args({mb, cores, 0});
  }
  for (int64_t bf16 : {0, 1}) {
    b->Args({0, 1, bf16});
    if (cores > 1) b->Args({0, cores, bf16});
  }
  b->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
}

BENCHMARK(BM_Memcpy)->Apply([](auto* b) { Sizes(b, false); })
    -> ArgNames({"MB"});
BENCHMARK(BM_ApplyInProcess)
    ->Apply(SizesAndQwen3Shape)
    ->ArgNames({"MB", "workers", "bf16"});
BENCHMARK(BM_SerializedApply)
    ->Apply([](auto* b) { Sizes(b, true); }) -> ArgNames({"MB", "workers"});
BENCHMARK(BM_Build)->Apply([](auto* b) { Sizes(b, true); })
    -> ArgNames({"MB", "workers"});
BENCHMARK(BM_Scan)
    ->Args({512, 1})
    ->Args({512, 2})
    ->Args({512, 3})
    ->ArgNames({"MB", "hash1_finite2"})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Sync)
    ->Apply(SizesAndQwen3Shape)
    ->ArgNames({"MB", "workers", "bf16"});
BENCHMARK(BM_AdapterSync)
    ->Arg(0)
    ->Arg(1)
    ->ArgNames({"http"})
    ->UseManualTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HttpStreamPush)
    ->Arg(0)
    ->Arg(1)
    ->ArgNames({"bf16"})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace rlrt

BENCHMARK_MAIN();
