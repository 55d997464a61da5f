#include "partition/mesh.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <boost/thread/thread.hpp>
#include <exception>
#include <set>
#include <system_error>
#include <utility>

#include "partition/blas_threading.h"

namespace rlrt {
namespace {

// Bounded spins before blocking. A decode step issues one ParallelFor per
// layer back to back, so a worker usually sees the next job within a few
// microseconds; sleeping in between would add a futex wake-up per layer.
constexpr int kWorkerSpinIterations = 4096;
constexpr int kCallerSpinIterations = 1024;
// The caller is one thread more than the mesh has cores, so the thread a
// spinner waits for may be queued on the spinner's own core. Yielding now
// and then lets it run (measured on 2 cores: 65 us per call without, 6 with).
constexpr int kYieldEvery = 64;

// The mesh whose worker the current thread is, if any.
thread_local const Mesh* tls_worker_mesh = nullptr;

// Spins until done() or `iterations` checks; returns done().
template <typename Done>
bool SpinUntil(int iterations, Done done) {
  for (int i = 1; i <= iterations; ++i) {
    if (done()) return true;
    if (i % kYieldEvery == 0) {
      sched_yield();
    } else {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  }
  return done();
}

bool IsValidName(const std::string& name) {
  if (name.empty() || name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

Status ValidateDevices(const std::vector<Device>& devices) {
  if (devices.empty()) return InvalidArgumentError("mesh has no devices");
  if (devices.size() > static_cast<size_t>(kMaxMeshSize)) {
    return InvalidArgumentError("mesh has " + std::to_string(devices.size()) +
                                " devices, more than " +
                                std::to_string(kMaxMeshSize));
  }
  std::set<int> ids;
  for (const Device& device : devices) {
    if (device.core < 0 || device.core >= CPU_SETSIZE) {
      return InvalidArgumentError("device " + DeviceToString(device) +
                                  " has an invalid core");
    }
    if (!ids.insert(device.id).second) {
      return InvalidArgumentError("device " + std::to_string(device.id) +
                                  " appears twice in the mesh");
    }
  }
  return OkStatus();
}

Status ValidateAxes(const std::vector<MeshAxis>& axes, int num_devices) {
  std::set<std::string> names;
  int64_t product = 1;
  for (const MeshAxis& axis : axes) {
    if (!IsValidName(axis.name)) {
      return InvalidArgumentError("invalid axis name '" + axis.name + "'");
    }
    if (!names.insert(axis.name).second) {
      return InvalidArgumentError("duplicate axis name '" + axis.name + "'");
    }
    if (axis.size <= 0) {
      return InvalidArgumentError("axis '" + axis.name + "' has size " +
                                  std::to_string(axis.size));
    }
    // Clamped so that many axes cannot overflow the product.
    product = std::min<int64_t>(product * axis.size, int64_t{kMaxMeshSize} + 1);
  }
  if (product != num_devices) {
    return InvalidArgumentError("axis sizes multiply to " +
                                std::to_string(product) + ", not to the " +
                                std::to_string(num_devices) + " devices");
  }
  return OkStatus();
}

Status PinCallingThread(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    return InternalError("cannot pin worker to core " + std::to_string(core) +
                         ": " + std::system_category().message(errno));
  }
  return OkStatus();
}

// Worker w's contiguous share of [0, n); the first n % size shards get one
// extra element.
Shard ShardOf(int64_t n, int size, int w) {
  const int64_t base = n / size;
  const int64_t extra = n % size;
  const int64_t begin = w * base + std::min<int64_t>(w, extra);
  return Shard{begin, begin + base + (w < extra ? 1 : 0), w};
}

// Exceptions must not escape a worker (that would terminate the process).
Status RunShard(FunctionRef<Status(const Shard&)> fn, const Shard& shard) {
  try {
    return fn(shard);
  } catch (const std::exception& e) {
    return InternalError(e.what());
  } catch (...) {
    return InternalError("unknown exception");
  }
}

bool DevicesShareCores(const std::vector<Device>& devices) {
  std::set<int> cores;
  for (const Device& device : devices) {
    if (!cores.insert(device.core).second) return true;
  }
  return false;
}

}  // namespace

Mesh::Mesh(std::string name, std::vector<Device> devices,
           std::vector<MeshAxis> axes)
    : name_(std::move(name)),
      devices_(std::move(devices)),
      axes_(std::move(axes)),
      shard_status_(devices_.size()),
      worker_tids_(devices_.size()),
      // Spinning workers that share a core would steal time from the one
      // doing the work.
      spin_before_sleep_(!DevicesShareCores(devices_)) {}

StatusOr<std::unique_ptr<Mesh>> Mesh::Create(std::string name,
                                             std::vector<Device> devices,
                                             std::vector<MeshAxis> axes) {
  const std::string context = "mesh '" + name + "'";
  RETURN_IF_ERROR(ValidateDevices(devices).WithContext(context));
  if (axes.empty()) {
    axes.push_back(MeshAxis{"tensor", static_cast<int>(devices.size())});
  }
  RETURN_IF_ERROR(ValidateAxes(axes, static_cast<int>(devices.size()))
                      .WithContext(context));
  // The first, process-wide application happens here, before any worker
  // exists; each worker then applies it to itself (see blas_threading.cc).
  ForceSingleThreadedBlas();

  std::unique_ptr<Mesh> mesh(
      new Mesh(std::move(name), std::move(devices), std::move(axes)));
  // On any error below, ~Mesh stops and joins the workers started so far.
  try {
    for (int w = 0; w < mesh->size(); ++w) {
      Mesh* m = mesh.get();
      mesh->workers_.push_back(
          std::make_unique<boost::thread>([m, w] { m->WorkerLoop(w); }));
    }
  } catch (const std::exception& e) {
    return ResourceExhaustedError(context +
                                  ": cannot start worker: " + e.what());
  }
  {
    std::unique_lock lock(mesh->mu_);
    mesh->done_cv_.wait(lock, [&] { return mesh->started_ == mesh->size(); });
    for (const Status& status : mesh->shard_status_) {
      if (!status.ok()) return status.WithContext(context);
    }
  }
  return mesh;
}

Mesh::~Mesh() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& worker : workers_) {
    if (worker->joinable()) worker->join();
  }
}

bool Mesh::IsOwnWorkerThread() const { return tls_worker_mesh == this; }

std::vector<pid_t> Mesh::WorkerThreadIds() const {
  std::vector<pid_t> tids;
  tids.reserve(worker_tids_.size());
  for (const auto& tid : worker_tids_) tids.push_back(tid.load());
  return tids;
}

void Mesh::WorkerLoop(int worker) {
  tls_worker_mesh = this;
  worker_tids_[worker].store(gettid());
  // Per thread in OpenBLAS's OpenMP flavour; see blas_threading.cc.
  ForceSingleThreadedBlas();
  Status pinned = PinCallingThread(devices_[worker].core);
  const bool ok = pinned.ok();
  {
    std::lock_guard lock(mu_);
    shard_status_[worker] = std::move(pinned);
    ++started_;
    done_cv_.notify_all();
  }
  if (!ok) return;  // Create fails and destroys the mesh.

  // Create returns only after every worker got here, so no job was
  // published yet.
  uint64_t seen = 0;
  for (;;) {
    if (spin_before_sleep_) {
      SpinUntil(kWorkerSpinIterations, [&] {
        return generation_.load(std::memory_order_acquire) != seen;
      });
    }
    uint64_t generation = generation_.load(std::memory_order_acquire);
    if (generation == seen) {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] {
        return stopping_ || generation_.load(std::memory_order_relaxed) != seen;
      });
      // The destructor cannot run while a job is in flight, so stopping
      // never abandons work.
      if (stopping_) return;
      generation = generation_.load(std::memory_order_relaxed);
    }
    seen = generation;

    const Shard shard = ShardOf(job_n_, size(), worker);
    shard_status_[worker] =
        shard.begin < shard.end ? RunShard(*job_fn_, shard) : OkStatus();
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // Under mu_ so the notification cannot fall between the caller's
      // predicate check and its wait.
      std::lock_guard lock(mu_);
      done_cv_.notify_one();
    }
  }
}

Status Mesh::ParallelFor(int64_t n, FunctionRef<Status(const Shard&)> fn) {
  if (n < 0) {
    return InvalidArgumentError("ParallelFor: n must be >= 0, got " +
                                std::to_string(n));
  }
  if (n == 0) return OkStatus();
  // Dispatching to ourselves would wait forever for this very worker.
  if (IsOwnWorkerThread()) return RunInline(n, fn);

  std::lock_guard dispatch(dispatch_mu_);
  {
    std::lock_guard lock(mu_);
    job_fn_ = &fn;
    job_n_ = n;
    remaining_.store(size(), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  work_cv_.notify_all();

  auto done = [&] { return remaining_.load(std::memory_order_acquire) == 0; };
  if (!(spin_before_sleep_ && SpinUntil(kCallerSpinIterations, done))) {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, done);
  }
  for (Status& status : shard_status_) {
    if (!status.ok()) return std::exchange(status, Status());
  }
  return OkStatus();
}

Status Mesh::RunInline(int64_t n, FunctionRef<Status(const Shard&)> fn) {
  // shard_status_ belongs to the job this worker is part of; keep ours local.
  Status first_error;
  for (int w = 0; w < size(); ++w) {
    const Shard shard = ShardOf(n, size(), w);
    if (shard.begin == shard.end) continue;
    Status status = RunShard(fn, shard);
    if (first_error.ok() && !status.ok()) first_error = std::move(status);
  }
  return first_error;
}

}  // namespace rlrt
