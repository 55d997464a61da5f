// Element types of parameter leaves, named as safetensors names them.
// Compute happens in F32; BF16 and F16 exist for storage and transfer.
#ifndef RLRT_MODELS_DTYPE_H_
#define RLRT_MODELS_DTYPE_H_

#include <cstdint>
#include <cstring>
#include <string_view>

#include "base/status.h"

namespace rlrt {

enum class DType : uint8_t { kF32 = 0, kBF16 = 1, kF16 = 2 };

inline constexpr size_t DTypeSize(DType dtype) {
  return dtype == DType::kF32 ? 4 : 2;
}
std::string_view DTypeName(DType dtype);  // "F32", "BF16", "F16"
StatusOr<DType> ParseDType(std::string_view name);

inline float Bf16ToF32(uint16_t bits) {
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &wide, 4);
  return out;
}

// Round to nearest even, as PyTorch does; NaN stays NaN.
inline uint16_t F32ToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return (bits >> 16) | 0x40;
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float F16ToF32(uint16_t bits);
uint16_t F32ToF16(float value);  // Round to nearest even.

// Reads element i of a buffer of the given dtype as float.
inline float LoadAsF32(const void* data, DType dtype, size_t i) {
  switch (dtype) {
    case DType::kF32:
      return static_cast<const float*>(data)[i];
    case DType::kBF16:
      return Bf16ToF32(static_cast<const uint16_t*>(data)[i]);
    case DType::kF16:
      return F16ToF32(static_cast<const uint16_t*>(data)[i]);
  }
  return 0.0f;
}

inline void StoreFromF32(void* data, DType dtype, size_t i, float value) {
  switch (dtype) {
    case DType::kF32:
      static_cast<float*>(data)[i] = value;
      break;
    case DType::kBF16:
      static_cast<uint16_t*>(data)[i] = F32ToBf16(value);
      break;
    case DType::kF16:
      static_cast<uint16_t*>(data)[i] = F32ToF16(value);
      break;
  }
}

}  // namespace rlrt

#endif  // RLRT_MODELS_DTYPE_H_
