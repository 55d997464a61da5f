#include "trainer_bridge/data_parallel.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "base/format.h"
#include "models/dtype.h"

namespace rlrt {

StatusOr<RankShare> ShareOf(int64_t total, int rank, int size,
                            std::string_view what) {
  if (size < 1 || rank < 0 || rank >= size)
    return InvalidArgumentError("rank " + std::to_string(rank) +
                                " is not in a group of " +
                                std::to_string(size));
  if (total % size != 0)
    return InvalidArgumentError(
        std::string(what) + " (" + std::to_string(total) +
        ") must divide evenly among " + std::to_string(size) + " ranks");
  const int64_t each = total / size;
  return RankShare{each * rank, each * (rank + 1)};
}

namespace {

// The leaves of `dtype` (elements T), packed across leaves into blocks of at
// most `block` elements in `staging`, each block summed by `sum` and copied
// back. Every rank walks the same leaves in the same order, so the blocks
// line up without any exchange of layout.
template <typename T, typename SumFn>
Status SumPackedLeaves(ParamLeaves& leaves, DType dtype, size_t block,
                       T* staging, SumFn&& sum) {
  auto next_leaf = [&](size_t l) {
    while (l < leaves.size() && leaves.spec(l).dtype != dtype) ++l;
    return l;
  };
  // Walks `count` elements from (leaf, offset), calling copy(leaf data,
  // staging position, n) per piece, and returns where it stopped.
  auto walk = [&](size_t& leaf, size_t& offset, size_t count, auto&& copy) {
    size_t done = 0;
    while (leaf < leaves.size() && done < count) {
      const size_t n = static_cast<size_t>(leaves.spec(leaf).NumElements());
      const size_t take = std::min(n - offset, count - done);
      copy(reinterpret_cast<T*>(leaves.data(leaf)) + offset, staging + done,
           take);
      done += take;
      offset += take;
      if (offset == n) {
        leaf = next_leaf(leaf + 1);
        offset = 0;
      }
    }
    return done;
  };
  size_t leaf = next_leaf(0), offset = 0;
  while (leaf < leaves.size()) {
    size_t back_leaf = leaf, back_offset = offset;
    const size_t filled =
        walk(leaf, offset, block, [](const T* from, T* to, size_t n) {
          std::memcpy(to, from, n * sizeof(T));
        });
    RETURN_IF_ERROR(sum(std::span<T>(staging, filled)));
    walk(back_leaf, back_offset, filled, [](T* to, const T* from, size_t n) {
      std::memcpy(to, from, n * sizeof(T));
    });
  }
  return OkStatus();
}

}  // namespace

Status DataParallelGroup::SumLeavesInRankOrder(ParamLeaves& leaves,
                                               int64_t block_elements) {
  if (size() == 1) return OkStatus();
  if (block_elements < 1)
    return InvalidArgumentError("block_elements must be >= 1");
  size_t f32_elements = 0, bf16_elements = 0;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const DType dtype = leaves.spec(i).dtype;
    const size_t n = static_cast<size_t>(leaves.spec(i).NumElements());
    if (dtype == DType::kF32) {
      f32_elements += n;
    } else if (dtype == DType::kBF16) {
      bf16_elements += n;
    } else {
      return InvalidArgumentError(
          "only F32 and BF16 leaves are summed over ranks; " +
          leaves.spec(i).name + " is " + std::string(DTypeName(dtype)));
    }
  }
  const size_t block = static_cast<size_t>(block_elements);
  // One staging buffer serves both passes (BF16 elements take half a float).
  const size_t needed = std::max(std::min(block, f32_elements),
                                 (std::min(block, bf16_elements) + 1) / 2);
  if (staging_.size() < needed) staging_.resize(needed);
  RETURN_IF_ERROR(SumPackedLeaves<float>(
      leaves, DType::kF32, block, staging_.data(),
      [&](std::span<float> values) { return SumInRankOrder(values); }));
  // BF16 leaves (BF16 gradients) are summed in float32 and rounded once.
  return SumPackedLeaves<uint16_t>(
      leaves, DType::kBF16, block, reinterpret_cast<uint16_t*>(staging_.data()),
      [&](std::span<uint16_t> values) { return SumInRankOrderBf16(values); });
}

Status CheckReplicasIdentical(DataParallelGroup& group, uint64_t hash,
                              std::string_view what) {
  ASSIGN_OR_RETURN(std::vector<uint64_t> hashes, group.AllGather(hash));
  std::string differing;
  for (size_t r = 1; r < hashes.size(); ++r) {
    if (hashes[r] == hashes[0]) continue;
    if (!differing.empty()) differing += ", ";
    differing += "rank " + std::to_string(r) + " has " + HexU64(hashes[r]);
  }
  if (differing.empty()) return OkStatus();
  return DataLossError(std::string(what) +
                       " differ across ranks (the replicas diverged): rank "
                       "0 has " +
                       HexU64(hashes[0]) + ", " + differing);
}

Status AgreeOnStatus(DataParallelGroup* group, Status local) {
  if (group == nullptr || group->size() == 1) return local;
  ASSIGN_OR_RETURN(std::vector<uint64_t> failed,
                   group->AllGather(local.ok() ? 0 : 1));
  if (!local.ok()) return local;
  std::string ranks;
  for (size_t r = 0; r < failed.size(); ++r) {
    if (failed[r] == 0) continue;
    if (!ranks.empty()) ranks += ", ";
    ranks += std::to_string(r);
  }
  if (ranks.empty()) return OkStatus();
  return AbortedError("rank(s) " + ranks +
                      " failed this step (see their log); this rank stops "
                      "with them");
}

Status ReduceMetrics(DataParallelGroup* group, std::span<double> values,
                     ReduceOp op) {
  if (group == nullptr || group->size() == 1) return OkStatus();
  return group->AllReduce(values, op);
}

}  // namespace rlrt
