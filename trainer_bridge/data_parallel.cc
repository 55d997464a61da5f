#include "trainer_bridge/data_parallel.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "base/format.h"

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
  // up without any exchange of layout.
  const int64_t total = leaves.total_elements();
  const size_t needed =
      static_cast<size_t>(std::min<int64_t>(block_elements, total));
  if (staging_.size() < needed) staging_.resize(needed);
  std::vector<float>& staging = staging_;
  size_t leaf = 0;
  int64_t offset = 0;  // Elements into `leaf`.
  int64_t done = 0;
  while (done < total) {
    const int64_t block = std::min<int64_t>(block_elements, total - done);
    // Pack, sum, unpack; the cursor is rewound for the unpack.
    const size_t leaf_start = leaf;
    const int64_t offset_start = offset;
    for (int64_t filled = 0; filled < block;) {
      std::span<float> data = leaves.F32(leaf);
      const int64_t n = std::min<int64_t>(
          block - filled, static_cast<int64_t>(data.size()) - offset);
      std::memcpy(staging.data() + filled, data.data() + offset,
                  n * sizeof(float));
      filled += n;
      offset += n;
      if (offset == static_cast<int64_t>(data.size())) {
        ++leaf;
        offset = 0;
      }
    }
    RETURN_IF_ERROR(SumInRankOrder(
        std::span<float>(staging.data(), static_cast<size_t>(block))));
    leaf = leaf_start;
    offset = offset_start;
    for (int64_t copied = 0; copied < block;) {
      std::span<float> data = leaves.F32(leaf);
      const int64_t n = std::min<int64_t>(
          block - copied, static_cast<int64_t>(data.size()) - offset);
      std::memcpy(data.data() + offset, staging.data() + copied,
                  n * sizeof(float));
      copied += n;
      offset += n;
      if (offset == static_cast<int64_t>(data.size())) {
        ++leaf;
        offset = 0;
      }
    }
    done += block;
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
