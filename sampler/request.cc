#include "sampler/request.h"

namespace rlrt {

uint64_t SampleSeed(uint64_t seed, int32_t index) {
  // SplitMix64 finaliser over (seed, index): nearby seeds and indices give
  // unrelated streams.
  uint64_t z =
      seed + 0x9e3779b97f4a7c15ull * (static_cast<uint64_t>(index) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace rlrt
