#include "trainer_bridge/data_parallel_local.h"

#include <algorithm>
#include <barrier>
#include <cstdint>
#include <string>

#include "models/dtype.h"

namespace rlrt {
namespace {

// What the ranks share. Between two barriers each rank writes only its own
// slot (or its own slice of `sum`), and reads others' slots only after the
// barrier that follows their writes: the barriers are the hand-off.
struct Rendezvous {
  explicit Rendezvous(int size)
      : size(size), barrier(size), slots(size), lengths(size) {}
  const int size;
  std::barrier<> barrier;
  std::vector<void*> slots;     // Each rank's buffer of the current call.
  std::vector<size_t> lengths;  // Its length in elements.
  std::vector<float> sum;       // Sized by rank 0.
};

class LocalGroup : public DataParallelGroup {
 public:
  LocalGroup(std::shared_ptr<Rendezvous> shared, int rank)
      : shared_(std::move(shared)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return shared_->size; }

  Status SumInRankOrder(std::span<float> values) override {
    return Sum(
        values.data(), values.size(),
        [](const void* p, size_t i) { return static_cast<const float*>(p)[i]; },
        [](void* p, size_t i, float v) { static_cast<float*>(p)[i] = v; });
  }
  Status SumInRankOrderBf16(std::span<uint16_t> values) override {
    return Sum(
        values.data(), values.size(),
        [](const void* p, size_t i) {
          return Bf16ToF32(static_cast<const uint16_t*>(p)[i]);
        },
        [](void* p, size_t i, float v) {
          static_cast<uint16_t*>(p)[i] = F32ToBf16(v);
        });
  }

  Status AllReduce(std::span<double> values, ReduceOp op) override {
    RETURN_IF_ERROR(Publish(values.data(), values.size()));
    const double* first = static_cast<const double*>(shared_->slots[0]);
    std::vector<double> result(first, first + values.size());
    for (int r = 1; r < size(); ++r) {
      const double* v = static_cast<const double*>(shared_->slots[r]);
      for (size_t i = 0; i < values.size(); ++i)
        result[i] = Combine(op, result[i], v[i]);
    }
    shared_->barrier.arrive_and_wait();  // All have read every slot.
    std::copy(result.begin(), result.end(), values.begin());
    return OkStatus();
  }

  StatusOr<std::vector<uint64_t>> AllGather(uint64_t value) override {
    RETURN_IF_ERROR(Publish(&value, 1));
    std::vector<uint64_t> all(size());
    for (int r = 0; r < size(); ++r)
      all[r] = *static_cast<const uint64_t*>(shared_->slots[r]);
    shared_->barrier.arrive_and_wait();
    return all;
  }

 private:
  // Posts this rank's buffer and waits for everyone's; fails on every rank
  // (after the same barriers) when the lengths differ.
  Status Publish(void* data, size_t length) {
    shared_->slots[rank_] = data;
    shared_->lengths[rank_] = length;
    shared_->barrier.arrive_and_wait();
    for (int r = 0; r < size(); ++r) {
      if (shared_->lengths[r] != length) {
        shared_->barrier.arrive_and_wait();
        return InvalidArgumentError(
            "ranks passed buffers of different lengths to a collective (" +
            std::to_string(length) + " here, " +
            std::to_string(shared_->lengths[r]) + " on rank " +
            std::to_string(r) + ")");
      }
    }
    return OkStatus();
  }

  template <typename Load, typename Store>
  Status Sum(void* data, size_t n, Load load, Store store) {
    if (rank_ == 0) shared_->sum.assign(n, 0.0f);
    RETURN_IF_ERROR(Publish(data, n));
    // This rank owns one slice of the elements and adds the ranks there in
    // rank order, as the MPI group's owner does.
    const size_t begin = n * rank_ / size(), end = n * (rank_ + 1) / size();
    for (size_t i = begin; i < end; ++i) {
      float s = load(shared_->slots[0], i);
      for (int r = 1; r < size(); ++r) s += load(shared_->slots[r], i);
      shared_->sum[i] = s;
    }
    shared_->barrier.arrive_and_wait();  // Every slice summed.
    for (size_t i = 0; i < n; ++i) store(data, i, shared_->sum[i]);
    shared_->barrier.arrive_and_wait();  // All have copied the sum out.
    return OkStatus();
  }

  std::shared_ptr<Rendezvous> shared_;
  const int rank_;
};

}  // namespace

std::vector<std::unique_ptr<DataParallelGroup>> CreateLocalGroups(int size) {
  auto shared = std::make_shared<Rendezvous>(size);
  std::vector<std::unique_ptr<DataParallelGroup>> groups;
  for (int r = 0; r < size; ++r)
    groups.push_back(std::make_unique<LocalGroup>(shared, r));
  return groups;
}

}  // namespace rlrt
