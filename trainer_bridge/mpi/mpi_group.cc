#include "trainer_bridge/mpi/mpi_group.h"

#include <glog/logging.h>
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "base/timing.h"
#include "models/dtype.h"

namespace rlrt {
namespace {

// Collectives move at most this many elements at a time, so every MPI
// count fits an int whatever the caller passes.
constexpr size_t kMaxElementsPerCall = size_t{1} << 26;

template <typename T>
MPI_Datatype MpiType();
template <>
MPI_Datatype MpiType<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype MpiType<uint16_t>() {
  return MPI_UINT16_T;
}

float Load(float v) { return v; }
float Load(uint16_t v) { return Bf16ToF32(v); }
void Store(float& to, float v) { to = v; }
void Store(uint16_t& to, float v) { to = F32ToBf16(v); }

}  // namespace

StatusOr<std::unique_ptr<MpiGroup>> MpiGroup::Create(
    int* argc, char*** argv, std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0)
    return InvalidArgumentError("the collective timeout must be positive");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized)
    return FailedPreconditionError("MPI is already initialised here");
  // Only the thread that created the group calls MPI; SERIALIZED still
  // lets a test drive it from another thread.
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) !=
      MPI_SUCCESS)
    return UnavailableError("MPI_Init_thread failed");
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return UnavailableError(
        "this MPI does not allow calls from more than one thread");
  }
  // Errors come back as codes (and become a Status) instead of aborting.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return std::unique_ptr<MpiGroup>(new MpiGroup(rank, size, timeout));
}

MpiGroup::~MpiGroup() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiGroup::AbortJob(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this is for the type.
}

// Waits until every rank has reached this collective, or ends the job on
// every rank past the deadline: a peer that died or hangs would otherwise
// block this one forever. Only the arrival is waited on this way (a
// non-blocking barrier, polled with sleeps, so a long wait for a slower
// rank does not burn its core); the data then moves with blocking
// collectives, which run at full speed where Open MPI's non-blocking ones
// progress only as fast as they are polled (measured: 10x slower).
static Status ArriveOrAbort(const char* what, std::chrono::milliseconds timeout,
                            MpiGroup& group) {
  MPI_Request request;
  if (MPI_Ibarrier(MPI_COMM_WORLD, &request) != MPI_SUCCESS)
    return InternalError("MPI_Ibarrier failed");
  const SteadyClock::time_point deadline = SteadyClock::now() + timeout;
  int spins = 0;
  while (true) {
    int done = 0;
    if (MPI_Test(&request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
      return InternalError(std::string("MPI failed in ") + what);
    if (done) return OkStatus();
    if (SteadyClock::now() > deadline) {
      LOG(ERROR) << "rank " << group.rank() << ": " << what
                 << " did not complete within " << timeout.count()
                 << " ms (a rank died or hangs); ending the job on every "
                    "rank";
      group.AbortJob(3);
    }
    if (++spins > 1000)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

Status MpiGroup::SameLengthEverywhere(size_t length, const char* what) {
  ASSIGN_OR_RETURN(std::vector<uint64_t> lengths, AllGather(length));
  for (int r = 0; r < size_; ++r) {
    if (lengths[r] != length)
      return InvalidArgumentError(
          std::string("ranks passed buffers of different lengths to ") + what +
          " (" + std::to_string(length) + " on rank " + std::to_string(rank_) +
          ", " + std::to_string(lengths[r]) + " on rank " + std::to_string(r) +
          ")");
  }
  return OkStatus();
}

template <typename T>
Status MpiGroup::Sum(std::span<T> values) {
  if (size_ == 1) return OkStatus();
  // Every rank sees the same lengths, so all refuse together.
  RETURN_IF_ERROR(SameLengthEverywhere(values.size(), "a sum"));
  const MPI_Datatype type = MpiType<T>();
  std::vector<int> counts(size_), displs(size_);
  std::vector<int> recv_counts(size_), recv_displs(size_);
  for (size_t base = 0; base < values.size(); base += kMaxElementsPerCall) {
    const size_t n = std::min(kMaxElementsPerCall, values.size() - base);
    T* data = values.data() + base;
    // Rank r owns elements [n*r/size, n*(r+1)/size) and adds the ranks'
    // values there in rank order; then everyone gathers the owners' sums.
    for (int r = 0; r < size_; ++r) {
      displs[r] = static_cast<int>(n * r / size_);
      counts[r] = static_cast<int>(n * (r + 1) / size_) - displs[r];
    }
    const int mine = counts[rank_];
    for (int r = 0; r < size_; ++r) {
      recv_counts[r] = mine;
      recv_displs[r] = mine * r;
    }
    const size_t receive_bytes = sizeof(T) * mine * size_;
    if (received_.size() < receive_bytes) received_.resize(receive_bytes);
    T* received = reinterpret_cast<T*>(received_.data());
    RETURN_IF_ERROR(ArriveOrAbort("the gradient exchange", timeout_, *this));
    if (MPI_Alltoallv(data, counts.data(), displs.data(), type, received,
                      recv_counts.data(), recv_displs.data(), type,
                      MPI_COMM_WORLD) != MPI_SUCCESS)
      return InternalError("MPI_Alltoallv failed");
    T* owned = data + displs[rank_];
    for (int i = 0; i < mine; ++i) {
      float s = Load(received[i]);
      for (int r = 1; r < size_; ++r)
        s += Load(received[static_cast<size_t>(r) * mine + i]);
      Store(owned[i], s);
    }
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, type, data, counts.data(),
                       displs.data(), type, MPI_COMM_WORLD) != MPI_SUCCESS)
      return InternalError("MPI_Allgatherv failed");
  }
  return OkStatus();
}

Status MpiGroup::SumInRankOrder(std::span<float> values) { return Sum(values); }

Status MpiGroup::SumInRankOrderBf16(std::span<uint16_t> values) {
  return Sum(values);
}

Status MpiGroup::AllReduce(std::span<double> values, ReduceOp op) {
  if (size_ == 1) return OkStatus();
  RETURN_IF_ERROR(SameLengthEverywhere(values.size(), "a reduction"));
  if (values.size() > kMaxElementsPerCall)
    return InvalidArgumentError("AllReduce is for small vectors");
  // Gathered whole and reduced here, so a sum adds in rank order.
  const int n = static_cast<int>(values.size());
  std::vector<double> all(values.size() * size_);
  RETURN_IF_ERROR(ArriveOrAbort("a metrics reduction", timeout_, *this));
  if (MPI_Allgather(values.data(), n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE,
                    MPI_COMM_WORLD) != MPI_SUCCESS)
    return InternalError("MPI_Allgather failed");
  for (size_t i = 0; i < values.size(); ++i) {
    double v = all[i];
    for (int r = 1; r < size_; ++r)
      v = Combine(op, v, all[static_cast<size_t>(r) * n + i]);
    values[i] = v;
  }
  return OkStatus();
}

StatusOr<std::vector<uint64_t>> MpiGroup::AllGather(uint64_t value) {
  std::vector<uint64_t> all(size_);
  if (size_ == 1) {
    all[0] = value;
    return all;
  }
  RETURN_IF_ERROR(
      ArriveOrAbort("an exchange with the other ranks", timeout_, *this));
  if (MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T,
                    MPI_COMM_WORLD) != MPI_SUCCESS)
    return InternalError("MPI_Allgather failed");
  return all;
}

}  // namespace rlrt
