#include "models/leaf_init.h"

#include <cmath>
#include <numbers>

#include "partition/parallel.h"

namespace rlrt {
namespace {

// SplitMix64: tiny, fast, and good enough for weights and noise; a fresh
// stream per chunk makes every chunk independent of the others.
class ChunkRng {
 public:
  ChunkRng(uint64_t seed, uint64_t salt, const LeafChunk& c)
      : state_(Mix(seed ^ Mix(salt + (static_cast<uint64_t>(c.leaf) << 24) +
                              c.index_in_leaf))) {}

  uint64_t Next() { return Mix(state_ += 0x9e3779b97f4a7c15ull); }

  // Uniform in [-1, 1), 24 random bits.
  float UniformSigned() {
    return static_cast<float>(static_cast<int64_t>(Next() >> 40) -
                              (int64_t{1} << 23)) *
           (1.0f / static_cast<float>(1 << 23));
  }

  // Two independent N(0, 1) samples (Box-Muller).
  void Gaussian2(double& a, double& b) {
    const uint64_t bits = Next();
    // u1 in (0, 1] so log(u1) is finite.
    const double u1 = (static_cast<double>(bits >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = static_cast<double>(Next() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * std::numbers::pi * u2;
    a = r * std::cos(theta);
    b = r * std::sin(theta);
  }

 private:
  static uint64_t Mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

constexpr uint64_t kInitSalt = 0x1417;
constexpr uint64_t kPerturbSalt = 0x9e27;

}  // namespace

Status FillDummy(ParamLeaves& leaves, uint64_t seed, Mesh* mesh,
                 FunctionRef<DummyInit(const LeafSpec&)> rule) {
  // Rules are evaluated once per leaf up front, not per chunk.
  std::vector<DummyInit> rules;
  rules.reserve(leaves.size());
  for (const LeafSpec& s : leaves.specs()) {
    DummyInit r = rule(s);
    if (!std::isfinite(r.stddev) || r.stddev < 0 || !std::isfinite(r.value)) {
      return InvalidArgumentError(
          "dummy init of '" + s.name +
          "': stddev and value must be finite, stddev >= 0");
    }
    rules.push_back(r);
  }
  const float uniform_to_stddev =
      std::sqrt(3.0f);  // U(-1,1) has stddev 1/sqrt(3).
  return ParallelForOrInline(
      mesh, static_cast<int64_t>(leaves.num_chunks()), [&](const Shard& s) {
        leaves.ForEachChunk(s.begin, s.end, [&](const LeafChunk& c) {
          const DType dtype = leaves.spec(c.leaf).dtype;
          const DummyInit& r = rules[c.leaf];
          std::byte* base = leaves.data(c.leaf) + c.offset;
          const size_t n = c.size / DTypeSize(dtype);
          if (r.kind == DummyInit::Kind::kConstant) {
            for (size_t i = 0; i < n; ++i)
              StoreFromF32(base, dtype, i, r.value);
            return;
          }
          ChunkRng rng(seed, kInitSalt, c);
          const float amplitude = r.stddev * uniform_to_stddev;
          for (size_t i = 0; i < n; ++i) {
            StoreFromF32(base, dtype, i, amplitude * rng.UniformSigned());
          }
        });
        return OkStatus();
      });
}

Status FillDummy(ParamLeaves& leaves, uint64_t seed, Mesh* mesh) {
  return FillDummy(leaves, seed, mesh,
                   [](const LeafSpec&) { return DummyInit{}; });
}

Status Perturb(ParamLeaves& leaves, uint64_t seed, double scale,
               int64_t num_leaves, Mesh* mesh) {
  if (num_leaves < 0) {
    return InvalidArgumentError("perturb: num_leaves must be >= 0, got " +
                                std::to_string(num_leaves));
  }
  if (!std::isfinite(scale) || scale < 0) {
    return InvalidArgumentError("perturb: scale must be finite and >= 0");
  }
  const size_t limit = std::min(leaves.size(), static_cast<size_t>(num_leaves));
  return ParallelForOrInline(
      mesh, static_cast<int64_t>(leaves.num_chunks()), [&](const Shard& s) {
        leaves.ForEachChunk(s.begin, s.end, [&](const LeafChunk& c) {
          if (c.leaf >= limit) return;
          const DType dtype = leaves.spec(c.leaf).dtype;
          std::byte* base = leaves.data(c.leaf) + c.offset;
          const size_t n = c.size / DTypeSize(dtype);
          ChunkRng rng(seed, kPerturbSalt, c);
          double g[2];
          for (size_t i = 0; i < n; ++i) {
            if ((i & 1) == 0) rng.Gaussian2(g[0], g[1]);
            const float noise = static_cast<float>(scale * g[i & 1]);
            StoreFromF32(base, dtype, i, LoadAsF32(base, dtype, i) + noise);
          }
        });
        return OkStatus();
      });
}

}  // namespace rlrt
