#include "trainer_bridge/split_master.h"

#include <cstring>
#include <string>

#include "models/hash.h"
#include "models/leaf_checksum.h"
#include "partition/parallel.h"

namespace rlrt {

StatusOr<SplitMaster> SplitMaster::Create(ParamLeaves* compute) {
  std::vector<LeafSpec> master_specs = compute->specs();
  std::vector<LeafSpec> low_specs;
  std::vector<int64_t> low_index(compute->size(), -1);
  for (size_t i = 0; i < compute->size(); ++i) {
    const DType dtype = compute->spec(i).dtype;
    if (dtype == DType::kBF16) {
      low_index[i] = static_cast<int64_t>(low_specs.size());
      low_specs.push_back(compute->spec(i));
    } else if (dtype != DType::kF32) {
      return InvalidArgumentError("a split master holds BF16 and F32 leaves; " +
                                  compute->spec(i).name + " is " +
                                  std::string(DTypeName(dtype)));
    }
    master_specs[i].dtype = DType::kF32;
  }
  // Zero-filled, as every new ParamLeaves is.
  ASSIGN_OR_RETURN(ParamLeaves low,
                   ParamLeaves::Allocate(std::move(low_specs)));
  return SplitMaster(compute, std::move(master_specs), std::move(low),
                     std::move(low_index));
}

Status SplitMaster::CopyTo(ParamLeaves& out, Mesh* mesh) const {
  if (out.specs() != master_specs_)
    return InvalidArgumentError(
        "the float32 master's copy must have the master's structure");
  for (size_t i = 0; i < out.size(); ++i) {
    float* to = reinterpret_cast<float*>(out.data(i));
    const std::byte* from = compute_->data(i);
    const uint16_t* lows = low(i);
    if (lows == nullptr) {
      std::memcpy(to, from, out.bytes(i));
      continue;
    }
    const uint16_t* highs = reinterpret_cast<const uint16_t*>(from);
    RETURN_IF_ERROR(ParallelForOrInline(
        mesh, master_specs_[i].NumElements(), [&](const Shard& s) {
          for (int64_t k = s.begin; k < s.end; ++k)
            to[k] = JoinFloat(highs[k], lows[k]);
          return OkStatus();
        }));
  }
  return OkStatus();
}

Status SplitMaster::Assign(const ParamLeaves& master, Mesh* mesh) {
  if (master.specs() != master_specs_)
    return InvalidArgumentError(
        "the float32 master to assign must have the master's structure");
  for (size_t i = 0; i < master.size(); ++i) {
    const float* from = reinterpret_cast<const float*>(master.data(i));
    uint16_t* lows = low(i);
    if (lows == nullptr) {
      std::memcpy(compute_->data(i), from, master.bytes(i));
      continue;
    }
    uint16_t* highs = reinterpret_cast<uint16_t*>(compute_->data(i));
    RETURN_IF_ERROR(ParallelForOrInline(
        mesh, master_specs_[i].NumElements(), [&](const Shard& s) {
          for (int64_t k = s.begin; k < s.end; ++k) {
            const SplitF32 split = SplitFloat(from[k]);
            highs[k] = split.high;
            lows[k] = split.low;
          }
          return OkStatus();
        }));
  }
  return OkStatus();
}

uint64_t SplitMaster::ContentHash(Mesh* mesh) const {
  const uint64_t hashes[2] = {rlrt::ContentHash(*compute_, mesh),
                              rlrt::ContentHash(low_, mesh)};
  return HashBytes(hashes, sizeof(hashes), /*seed=*/0);
}

}  // namespace rlrt
