// A Mesh is an ordered set of devices with named axes, and it owns one worker
// thread per device, pinned to that device's core. All model work of a mesh
// runs on its workers and nowhere else; two meshes run independently.
#ifndef RLRT_PARTITION_MESH_H_
#define RLRT_PARTITION_MESH_H_

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/function_ref.h"
#include "base/status.h"
#include "partition/device.h"

namespace boost {
class thread;
}

namespace rlrt {

struct MeshAxis {
  std::string name;
  int size = 1;
};

// One worker's share of a ParallelFor: the half-open range [begin, end).
struct Shard {
  int64_t begin = 0;
  int64_t end = 0;
  int worker = 0;  // Index of the worker in the mesh, 0..size()-1.
};

// Upper bound on devices per mesh, so per-worker scratch can live on the stack.
inline constexpr int kMaxMeshSize = 256;

class Mesh {
 public:
  // Starts and pins one worker per device. Axes default to {"tensor", size};
  // otherwise their sizes must multiply to the device count. Fails if a
  // worker cannot be pinned to its core.
  static StatusOr<std::unique_ptr<Mesh>> Create(
      std::string name, std::vector<Device> devices,
      std::vector<MeshAxis> axes = {});
  ~Mesh();  // Stops and joins the workers.
  Mesh(const Mesh&) = delete;
  Mesh& operator=(const Mesh&) = delete;

  const std::string& name() const { return name_; }
  const std::vector<Device>& devices() const { return devices_; }
  const std::vector<MeshAxis>& axes() const { return axes_; }
  int size() const { return static_cast<int>(devices_.size()); }

  // Splits [0, n) into size() contiguous ranges (sizes differ by at most one;
  // ranges may be empty when n < size()) and runs fn on range w on worker w.
  // Returns when every shard has finished. The first non-OK Status returned by
  // a shard, or an exception thrown by one, comes back as the result (the
  // other shards still run to completion). Calls from several threads are
  // serialized; a call from one of this mesh's own workers runs all shards
  // inline on that worker instead of deadlocking. Allocates nothing.
  Status ParallelFor(int64_t n, FunctionRef<Status(const Shard&)> fn);

  // Runs fn once on every worker (shard w is [w, w+1)).
  Status RunOnEachWorker(FunctionRef<Status(const Shard&)> fn) {
    return ParallelFor(size(), fn);
  }

  // True when called on one of this mesh's worker threads.
  bool IsOwnWorkerThread() const;

  // Kernel thread ids (gettid) of the workers, in device order; for tests and
  // diagnostics.
  std::vector<pid_t> WorkerThreadIds() const;

 private:
  Mesh(std::string name, std::vector<Device> devices,
       std::vector<MeshAxis> axes);
  void WorkerLoop(int worker);
  Status RunInline(int64_t n, FunctionRef<Status(const Shard&)> fn);

  const std::string name_;
  const std::vector<Device> devices_;
  const std::vector<MeshAxis> axes_;

  // Serializes ParallelFor callers: one job in flight at a time.
  std::mutex dispatch_mu_;

  // Job hand-off. The dispatcher publishes job_fn_/job_n_ and bumps
  // generation_ under mu_; workers run their shard, store their Status in
  // shard_status_[worker] and decrement remaining_. The last one wakes the
  // dispatcher. Workers spin briefly before sleeping, to keep the hand-off
  // latency of back-to-back calls (one per layer in a decode step) low.
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> remaining_{0};
  bool stopping_ = false;  // Guarded by mu_.
  int started_ = 0;        // Workers done with start-up; guarded by mu_.
  // Written under mu_ before the generation_ bump (release); workers read
  // them after seeing the new generation (acquire), so they need no lock.
  const FunctionRef<Status(const Shard&)>* job_fn_ = nullptr;
  int64_t job_n_ = 0;
  // Slot w is written only by worker w, and read by the dispatcher after
  // remaining_ reaches zero. At start-up it carries the pinning result.
  std::vector<Status> shard_status_;

  std::vector<std::unique_ptr<boost::thread>> workers_;
  std::vector<std::atomic<pid_t>> worker_tids_;
  bool spin_before_sleep_ = true;  // False when devices share cores.
};

}  // namespace rlrt

#endif  // RLRT_PARTITION_MESH_H_
