// Helpers shared by the models tests.
#ifndef RLRT_MODELS_TEST_UTIL_H_
#define RLRT_MODELS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/param_leaves.h"
#include "partition/device.h"
#include "partition/mesh.h"

namespace rlrt::testing {

// The BF16 bits nearest to finite x, ties away from zero, decided by
// distances in double between x's two BF16 neighbours (x's bits cut to 16,
// and one BF16 step farther from zero). Past the largest BF16 value the
// farther neighbour is infinity, reached from 2^128 as IEEE rounding does.
inline uint16_t NearestBf16TiesAwayBits(float x) {
  const uint32_t toward = std::bit_cast<uint32_t>(x) & 0xFFFF0000u;
  const uint32_t away = toward + 0x10000u;
  if (std::bit_cast<float>(toward) == x)
    return static_cast<uint16_t>(toward >> 16);
  const float away_float = std::bit_cast<float>(away);
  const double away_value = std::isinf(away_float)
                                ? std::copysign(std::ldexp(1.0, 128), x)
                                : double(away_float);
  const double to_toward = std::fabs(double(x) - std::bit_cast<float>(toward));
  const double to_away = std::fabs(away_value - x);
  return static_cast<uint16_t>((to_away <= to_toward ? away : toward) >> 16);
}

// A mesh of `n` virtual devices on the real cores.
inline std::unique_ptr<Mesh> MakeMesh(int n, const std::string& name = "test") {
  auto devices = DiscoverLocalDevices(n);
  EXPECT_TRUE(devices.ok()) << devices.status();
  auto mesh = Mesh::Create(name, *devices);
  EXPECT_TRUE(mesh.ok()) << mesh.status();
  return std::move(mesh).value();
}

// Awkward sizes on purpose: empty leaves, leaves one byte past a chunk
// boundary, several chunks, a BF16 leaf.
inline std::vector<LeafSpec> MixedSpecs() {
  return {{"a.weight", {3, 5}, DType::kF32},
          {"empty.weight", {0, 7}, DType::kF32},
          {"b.weight", {65537}, DType::kF32},  // One float past a chunk.
          {"c.weight", {300, 1000}, DType::kF32},
          {"d.weight", {4097}, DType::kBF16},
          {"e.weight", {0}, DType::kF16},
          {"f.weight", {2, 3}, DType::kF16}};
}

inline ParamLeaves AllocateOrDie(std::vector<LeafSpec> specs) {
  auto leaves = ParamLeaves::Allocate(std::move(specs));
  EXPECT_TRUE(leaves.ok()) << leaves.status();
  return std::move(leaves).value();
}

inline bool SameBytes(const ParamLeaves& a, const ParamLeaves& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a.bytes(i) != b.bytes(i) ||
        std::memcmp(a.data(i), b.data(i), a.bytes(i)) != 0) {
      return false;
    }
  }
  return true;
}

}  // namespace rlrt::testing

#endif  // RLRT_MODELS_TEST_UTIL_H_
