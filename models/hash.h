// 64-bit hashing of byte ranges (XXH3). Only .cc files include xxhash, so its
// inline AVX-512 code is compiled for the host without leaking into headers.
#ifndef RLRT_MODELS_HASH_H_
#define RLRT_MODELS_HASH_H_

#include <cstddef>
#include <cstdint>

namespace rlrt {

uint64_t HashBytes(const void* data, size_t size, uint64_t seed);

}  // namespace rlrt

#endif  // RLRT_MODELS_HASH_H_
