// The data-parallel group over MPI (Debian's Open MPI): one rank per
// process of `mpirun -np N`, over MPI_COMM_WORLD.
//
// Every collective starts with a non-blocking barrier waited on with a
// deadline: a rank that died or hangs would otherwise leave the others
// blocked forever. When the other ranks have not arrived within `timeout`,
// the rank logs which collective it was waiting in and calls MPI_Abort,
// which ends the job on every rank with a non-zero exit. (A rank that
// crashes is also noticed by mpirun itself, which then kills the others.)
#ifndef RLRT_TRAINER_BRIDGE_MPI_MPI_GROUP_H_
#define RLRT_TRAINER_BRIDGE_MPI_MPI_GROUP_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "trainer_bridge/data_parallel.h"

namespace rlrt {

class MpiGroup : public DataParallelGroup {
 public:
  // Initialises MPI (once per process; MPI_Finalize runs when the group is
  // destroyed). A process started without mpirun is a group of one.
  // `timeout` bounds every collective.
  static StatusOr<std::unique_ptr<MpiGroup>> Create(
      int* argc, char*** argv, std::chrono::milliseconds timeout);
  ~MpiGroup() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Status SumInRankOrder(std::span<float> values) override;
  Status SumInRankOrderBf16(std::span<uint16_t> values) override;
  Status AllReduce(std::span<double> values, ReduceOp op) override;
  StatusOr<std::vector<uint64_t>> AllGather(uint64_t value) override;

  // Ends the job on every rank (MPI_Abort) with `exit_code`.
  [[noreturn]] void AbortJob(int exit_code);

 private:
  MpiGroup(int rank, int size, std::chrono::milliseconds timeout)
      : rank_(rank), size_(size), timeout_(timeout) {}
  template <typename T>
  Status Sum(std::span<T> values);
  // Fails on every rank, with the lengths, unless all passed `length`: a
  // collective over buffers of different sizes would read out of bounds.
  Status SameLengthEverywhere(size_t length, const char* what);

  const int rank_;
  const int size_;
  const std::chrono::milliseconds timeout_;
  // What the other ranks send this rank's slice of, kept across calls
  // (fresh pages per call cost more than the exchange).
  std::vector<std::byte> received_;
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_MPI_MPI_GROUP_H_
