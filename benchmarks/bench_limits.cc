#include "benchmarks/bench_limits.h"

#include <benchmark/benchmark.h>
#include <cblas.h>
#include <glog/logging.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "base/timing.h"
#include "models/page_arena.h"
#include "partition/device.h"

namespace rlrt {
namespace {}  // namespace

std::unique_ptr<Mesh> BenchMesh(int devices) {
  auto all = DiscoverLocalDevices();
  CHECK(all.ok()) << all.status();
  std::vector<Device> picked(
      all->begin(), all->begin() + std::min<size_t>(devices, all->size()));
  return std::move(Mesh::Create("bench", picked)).value();
}

double SgemmPeakGflops() {
  static const double peak = [] {
    auto mesh = BenchMesh(1);
    const int n = 2048;
    std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
    double best = 0;
    CHECK(mesh->ParallelFor(1,
                            [&](const Shard&) {
                              for (int rep = 0; rep < 3; ++rep) {
                                const auto t0 = SteadyClock::now();
                                cblas_sgemm(CblasRowMajor, CblasNoTrans,
                                            CblasTrans, n, n, n, 1.0f, a.data(),
                                            n, b.data(), n, 0.0f, c.data(), n);
                                best = std::max(
                                    best,
                                    2.0 * n * n * n /
                                        SecondsBetween(t0, SteadyClock::now()) /
                                        1e9);
                              }
                              return OkStatus();
                            })
              .ok());
    return best;
  }();
  return peak;
}

double Bf16DotPeakGflops() {
#if defined(__AVX512BF16__)
  static const double peak = [] {
    auto mesh = BenchMesh(1);
    // Twelve independent accumulators hide the instruction's latency.
    constexpr int kAccumulators = 12;
    constexpr int64_t kIterations = 20'000'000;
    double best = 0;
    CHECK(mesh->ParallelFor(
                  1,
                  [&](const Shard&) {
                    const __m512bh a = reinterpret_cast<__m512bh>(
                        _mm512_set1_epi16(0x3f80));  // 1.0
                    const __m512bh b = reinterpret_cast<__m512bh>(
                        _mm512_set1_epi16(0x3c00));  // 2^-7
                    for (int rep = 0; rep < 3; ++rep) {
                      __m512 acc[kAccumulators];
                      for (__m512& x : acc) x = _mm512_setzero_ps();
                      const auto t0 = SteadyClock::now();
                      for (int64_t i = 0; i < kIterations; ++i) {
                        for (__m512& x : acc) x = _mm512_dpbf16_ps(x, a, b);
                      }
                      const double s = SecondsBetween(t0, SteadyClock::now());
                      alignas(64) float sink[16];
                      for (__m512& x : acc) {
                        _mm512_store_ps(sink, x);
                        benchmark::DoNotOptimize(sink[0]);
                      }
                      best = std::max(
                          best, 64.0 * kAccumulators * kIterations / s / 1e9);
                    }
                    return OkStatus();
                  })
              .ok());
    return best;
  }();
  return peak;
#else
  return 0;
#endif
}

double MemcpyBytesPerSecond() {
  static const double bw = [] {
    const size_t n = size_t{512} << 20;
    auto src = std::move(PageArena::Create(n)).value();
    auto dst = std::move(PageArena::Create(n)).value();
    std::memset(src.data(), 1, n);
    std::memset(dst.data(), 2, n);
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = SteadyClock::now();
      std::memcpy(dst.data(), src.data(), n);
      benchmark::ClobberMemory();
      best = std::max(best, n / SecondsBetween(t0, SteadyClock::now()));
    }
    return best;
  }();
  return bw;
}

double StreamReadBytesPerSecond(int devices) {
  static std::mutex mu;
  static std::map<int, double> measured;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = measured.find(devices); it != measured.end()) return it->second;
  const size_t n = size_t{1} << 30;
  auto buffer = std::move(PageArena::Create(n)).value();
  std::memset(buffer.data(), 1, n);
  auto mesh = BenchMesh(devices);
  const int64_t words = static_cast<int64_t>(n / sizeof(uint64_t));
  const auto* data = reinterpret_cast<const uint64_t*>(buffer.data());
  std::vector<uint64_t> sums(mesh->size());
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = SteadyClock::now();
    CHECK(mesh->ParallelFor(words,
                            [&](const Shard& shard) {
                              // Eight independent sums: the loop vectorises,
                              // and no dependency chain limits it below the
                              // memory's rate.
                              uint64_t acc[8] = {};
                              int64_t i = shard.begin;
                              for (; i + 8 <= shard.end; i += 8)
                                for (int k = 0; k < 8; ++k)
                                  acc[k] += data[i + k];
                              for (; i < shard.end; ++i) acc[0] += data[i];
                              uint64_t total = 0;
                              for (uint64_t a : acc) total += a;
                              sums[shard.worker] = total;
                              return OkStatus();
                            })
              .ok());
    benchmark::DoNotOptimize(sums.data());
    best = std::max(best, n / SecondsBetween(t0, SteadyClock::now()));
  }
  measured[devices] = best;
  return best;
}

double ForwardFlops(const ModelConfig& c, double tokens, double logit_rows,
                    int64_t context) {
  const double per_layer = c.hidden_size * (c.q_dim() + 2.0 * c.kv_dim()) +
                           double(c.q_dim()) * c.hidden_size +
                           3.0 * c.hidden_size * c.intermediate_size;
  const double per_token =
      c.num_hidden_layers * (2.0 * per_layer + 4.0 * context * c.q_dim());
  return tokens * per_token + logit_rows * 2.0 * c.vocab_size * c.hidden_size;
}

}  // namespace rlrt
