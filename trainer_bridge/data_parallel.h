// Data parallelism: N replicas of the trainer (ranks), each in its own
// process with its own meshes and in-process sampler, each training on its
// share of the global batch. Only gradients (and a few metrics) cross
// between ranks; every rank applies the same optimizer step to the same
// summed gradient, so the replicas stay identical, and each step they
// compare a 64-bit content hash of their weights to prove it.
//
// Determinism. Every reduction adds the ranks' contributions in rank order,
// (((v0 + v1) + v2) + ...), on the one rank that owns each element, and
// then hands the sum to all: every rank holds the same bits, and a run is
// bitwise reproducible for a given number of ranks. (A run on N ranks and
// one on 1 rank differ in the order the micro-batches' gradients are added,
// so they agree to float rounding, not bit for bit.)
//
// The interface has an MPI implementation (trainer_bridge/mpi/, built when
// Open MPI is installed) and an in-process one over threads
// (data_parallel_local.h) for tests.
#ifndef RLRT_TRAINER_BRIDGE_DATA_PARALLEL_H_
#define RLRT_TRAINER_BRIDGE_DATA_PARALLEL_H_

#include <algorithm>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/param_leaves.h"

namespace rlrt {

enum class ReduceOp { kSum, kMax, kMin };

// One step of a reduction: `acc` combined with the next rank's `value`.
inline double Combine(ReduceOp op, double acc, double value) {
  switch (op) {
    case ReduceOp::kSum:
      return acc + value;
    case ReduceOp::kMax:
      return std::max(acc, value);
    case ReduceOp::kMin:
      break;
  }
  return std::min(acc, value);
}

class DataParallelGroup {
 public:
  virtual ~DataParallelGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Replaces `values`, on every rank, by their elementwise sum over the
  // ranks, added in rank order. Every rank must pass the same length.
  virtual Status SumInRankOrder(std::span<float> values) = 0;
  // The same over bfloat16 bits: summed in float32 in rank order, rounded
  // to bfloat16 once (half the bytes on the wire).
  virtual Status SumInRankOrderBf16(std::span<uint16_t> values) = 0;
  // Small reductions (metrics, counts: doubles are exact below 2^53); kSum
  // adds in rank order too.
  virtual Status AllReduce(std::span<double> values, ReduceOp op) = 0;
  // Every rank's value, indexed by rank.
  virtual StatusOr<std::vector<uint64_t>> AllGather(uint64_t value) = 0;

  // Sums leaves (gradients) over the ranks in rank order, in blocks of at
  // most `block_elements` packed across leaves, so small leaves do not
  // cost a collective each and the staging memory stays bounded. F32
  // leaves go first, then BF16 ones (SumInRankOrderBf16: float32 sums,
  // rounded once); any other dtype is refused before anything moves. A
  // group of one changes nothing.
  Status SumLeavesInRankOrder(ParamLeaves& leaves,
                              int64_t block_elements = int64_t{1} << 24);

 private:
  // The packed block, kept across calls: fresh pages for every block cost
  // more than the exchange itself (measured: 250 ms of page faults per
  // 64 MB block on this VM, against 60 ms for the MPI exchange).
  std::vector<float> staging_;
};

// The ranks' share of `total` items: [begin, end). Items must divide evenly
// (a GRPO group never straddles ranks, and every rank trains the same
// amount).
struct RankShare {
  int64_t begin = 0;
  int64_t end = 0;
};
StatusOr<RankShare> ShareOf(int64_t total, int rank, int size,
                            std::string_view what);

// All-gathers `hash` (of `what`, e.g. "the policy weights") and fails on
// every rank, naming the ranks whose hash differs from rank 0's, unless all
// are equal.
Status CheckReplicasIdentical(DataParallelGroup& group, uint64_t hash,
                              std::string_view what);

// Makes a local success or failure collective, so that no rank goes on to
// a collective its peers will never join: returns `local` when it failed,
// an error naming the failed ranks when another did, OK when all are OK. A
// null group returns `local`.
Status AgreeOnStatus(DataParallelGroup* group, Status local);

// Sums `values` (or takes their max or min) over the ranks; a null group is
// one rank and changes nothing.
Status ReduceMetrics(DataParallelGroup* group, std::span<double> values,
                     ReduceOp op);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_DATA_PARALLEL_H_
