#include "trainer_bridge/data_parallel.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "base/format.h"
#include "models/leaf_payload.h"

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

Status DataParallelGroup::SumLeavesInRankOrder(ParamLeaves& leaves,
                                               int64_t block_elements) {
  if (size() == 1) return OkStatus();
  if (block_elements < 1)
    return InvalidArgumentError("block_elements must be >= 1");
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (leaves.spec(i).dtype != DType::kF32)
      return InvalidArgumentError("only F32 leaves are summed over ranks; " +
                                  leaves.spec(i).name + " is not");
  }
  // Every rank walks the same leaves in the same order, so the blocks line
  // up without any exchange of layout. A block is a byte range of the
  // leaves' payload (leaf_payload.h), packed, summed and unpacked.
  const size_t total = leaves.total_bytes();
  const size_t block_bytes =
      static_cast<size_t>(block_elements) * sizeof(float);
  const size_t needed = std::min(block_bytes, total) / sizeof(float);
  if (staging_.size() < needed) staging_.resize(needed);
  std::byte* staging = reinterpret_cast<std::byte*>(staging_.data());
  for (size_t begin = 0; begin < total; begin += block_bytes) {
    const size_t size = std::min(block_bytes, total - begin);
    RETURN_IF_ERROR(ForEachPayloadSpan(
        leaves, begin, size,
        [&](size_t leaf, size_t leaf_offset, size_t at, size_t n) {
          std::memcpy(staging + at, leaves.data(leaf) + leaf_offset, n);
        }));
    RETURN_IF_ERROR(SumInRankOrder(
        std::span<float>(staging_.data(), size / sizeof(float))));
    RETURN_IF_ERROR(ForEachPayloadSpan(
        leaves, begin, size,
        [&](size_t leaf, size_t leaf_offset, size_t at, size_t n) {
          std::memcpy(leaves.data(leaf) + leaf_offset, staging + at, n);
        }));
  }
  return OkStatus();
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
