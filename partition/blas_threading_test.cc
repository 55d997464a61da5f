#include "partition/blas_threading.h"

#include <cblas.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <vector>

#include "partition/mesh.h"

namespace rlrt {
namespace {

int ProcessThreadCount() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

std::unique_ptr<Mesh> RealMesh() {
  StatusOr<std::vector<Device>> devices = DiscoverLocalDevices();
  EXPECT_TRUE(devices.ok());
  if (!devices.ok()) return nullptr;
  StatusOr<std::unique_ptr<Mesh>> mesh = Mesh::Create("blas", *devices);
  EXPECT_TRUE(mesh.ok()) << mesh.status();
  return mesh.ok() ? std::move(mesh).value() : nullptr;
}

std::vector<float> RandomMatrix(int rows, int cols, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> m(static_cast<size_t>(rows) * cols);
  for (float& x : m) x = dist(rng);
  return m;
}

TEST(BlasThreadingTest, SingleThreadedOnceAMeshExists) {
  std::unique_ptr<Mesh> mesh = RealMesh();
  ASSERT_NE(mesh, nullptr);
  EXPECT_EQ(BlasThreadCount(), 1);
  ForceSingleThreadedBlas();  // Idempotent.
  EXPECT_EQ(BlasThreadCount(), 1);
}

TEST(BlasThreadingTest, SgemmOnEveryWorkerStartsNoThreads) {
  std::unique_ptr<Mesh> mesh = RealMesh();
  ASSERT_NE(mesh, nullptr);
  constexpr int kN = 512;
  std::mt19937 rng(1);
  const std::vector<float> a = RandomMatrix(kN, kN, rng);
  const std::vector<float> b = RandomMatrix(kN, kN, rng);
  std::vector<std::vector<float>> c(mesh->size(), std::vector<float>(kN * kN));

  const int threads_before = ProcessThreadCount();
  std::vector<int> threads_during(mesh->size(), 0);
  for (int round = 0; round < 50; ++round) {
    ASSERT_TRUE(mesh->RunOnEachWorker([&](const Shard& shard) {
                      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kN,
                                  kN, kN, 1.0f, a.data(), kN, b.data(), kN,
                                  0.0f, c[shard.worker].data(), kN);
                      threads_during[shard.worker] = ProcessThreadCount();
                      return OkStatus();
                    })
                    .ok());
    for (int w = 0; w < mesh->size(); ++w) {
      EXPECT_EQ(threads_during[w], threads_before) << "round " << round;
    }
  }
  EXPECT_EQ(ProcessThreadCount(), threads_before);
  EXPECT_EQ(BlasThreadCount(), 1);

  // Spot-check the big product against dot products.
  for (int w = 0; w < mesh->size(); ++w) {
    for (int i : {0, 17, kN - 1}) {
      for (int j : {0, 300, kN - 1}) {
        double expected = 0;
        for (int k = 0; k < kN; ++k) {
          expected += static_cast<double>(a[i * kN + k]) * b[k * kN + j];
        }
        EXPECT_NEAR(c[w][i * kN + j], expected, 1e-3);
      }
    }
  }
}

TEST(BlasThreadingTest, SgemmMatchesNaiveProduct) {
  std::unique_ptr<Mesh> mesh = RealMesh();
  ASSERT_NE(mesh, nullptr);
  // Not square, and with alpha/beta, so a transposed layout would show.
  constexpr int kM = 7, kK = 5, kN = 9;
  std::mt19937 rng(2);
  const std::vector<float> a = RandomMatrix(kM, kK, rng);
  const std::vector<float> b = RandomMatrix(kK, kN, rng);
  const std::vector<float> c0 = RandomMatrix(kM, kN, rng);
  std::vector<std::vector<float>> c(mesh->size(), c0);
  ASSERT_TRUE(mesh->RunOnEachWorker([&](const Shard& shard) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kM,
                                kN, kK, 2.0f, a.data(), kK, b.data(), kN, 0.5f,
                                c[shard.worker].data(), kN);
                    return OkStatus();
                  })
                  .ok());
  for (int w = 0; w < mesh->size(); ++w) {
    for (int i = 0; i < kM; ++i) {
      for (int j = 0; j < kN; ++j) {
        float expected = 0;
        for (int k = 0; k < kK; ++k) expected += a[i * kK + k] * b[k * kN + j];
        expected = 2.0f * expected + 0.5f * c0[i * kN + j];
        EXPECT_NEAR(c[w][i * kN + j], expected, 1e-5) << i << "," << j;
      }
    }
  }
}

}  // namespace
}  // namespace rlrt
