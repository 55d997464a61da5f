// The LoRA adapters an engine holds resident, by name, over one base model.
//
// Ownership. An adapter lives in a ResidentAdapter held by shared pointer:
// by the registry while it is loaded, and by every request running with it,
// so unloading or evicting never pulls weights from under a running
// request (its memory goes with its last request).
//
// Threads. The name table is guarded by the registry's mutex: any thread
// may look up, load, unload or list. An adapter's weights are written only
// on the engine's scheduler thread, between two decode steps (the engine's
// control operations), which is also the only thread that runs forward
// passes reading them; `version` is mirrored in an atomic for other
// threads.
//
// Versions. Under VersionPolicy::kLatest an update writes in place into
// the adapter every request of that name holds, so each request moves to
// the new version at the next step (as full weights do). Under kPin an
// update goes into another copy of the adapter (up to `resident_versions`
// copies per name, reused once no request holds them) and the name then
// points at it: a request keeps the version it was submitted under until
// it finishes. When every copy is still in use, the update writes the copy
// of the oldest version in place (its requests move to the new version at
// the next step, as under kLatest): an update never waits and never fails
// for lack of room, per-token versions stay true, and pin_overflows()
// counts it.
#ifndef RLRT_SAMPLER_ADAPTER_REGISTRY_H_
#define RLRT_SAMPLER_ADAPTER_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/config/model_config.h"
#include "models/lora/lora_adapter.h"

namespace rlrt {

enum class LoraVersionPolicy { kLatest, kPin };
StatusOr<LoraVersionPolicy> ParseLoraVersionPolicy(std::string_view text);

struct ResidentAdapter {
  ResidentAdapter(std::string name, uint64_t serial,
                  std::unique_ptr<LoraAdapter> adapter, std::string source)
      : name(std::move(name)),
        serial(serial),
        source(std::move(source)),
        adapter(std::move(adapter)) {
    version.store(this->adapter->leaves().version());
  }
  const std::string name;
  // Unique over the engine's life (never reused): with the version, the
  // prefix cache's key space for pages this adapter computed.
  const uint64_t serial;
  const std::string source;  // The directory it was read from, or "update".
  // Weights: written on the scheduler thread only (see above).
  const std::unique_ptr<LoraAdapter> adapter;
  // adapter->leaves().version(), readable from any thread.
  std::atomic<uint64_t> version{0};

  // The prefix cache's key space for the current version. Scheduler
  // thread.
  uint64_t CacheSpace() const;
};

// Where an update of a resident adapter goes, and the version it must beat
// (the name's current version: under kPin the copy written may hold an
// older one).
struct AdapterUpdateTarget {
  std::shared_ptr<ResidentAdapter> copy;  // Null: the name is not resident.
  uint64_t version_in_force = 0;
};

struct AdapterInfo {
  std::string name;
  std::string source;
  uint64_t version = 0;
  int64_t rank = 0;
  std::string target_modules;
  bool busy = false;  // A request holds one of its copies.
};

class AdapterRegistry {
 public:
  AdapterRegistry(const ModelConfig& model, int64_t max_loras,
                  int64_t max_lora_rank, LoraVersionPolicy policy,
                  int64_t resident_versions);

  // Checks that `adapter` was made for this base and fits max_lora_rank
  // (InvalidArgument naming what differs); allocates nothing.
  Status CheckFits(const LoraAdapter& adapter) const;

  // The adapter a new request named `name` runs with (NotFound, listing
  // what is loaded, for an unknown name); counts as a use for LRU.
  StatusOr<std::shared_ptr<ResidentAdapter>> Acquire(std::string_view name);

  // Makes `adapter` resident as `name`. AlreadyExists when the name is
  // taken; when max_loras adapters are resident, the least recently used
  // one no request holds is evicted (its name returned), or
  // ResourceExhausted when all are in use. CheckFits is applied first.
  StatusOr<std::string> Insert(std::string_view name,
                               std::unique_ptr<LoraAdapter> adapter,
                               std::string source);
  // Drops `name` (NotFound if it is not loaded). Requests running with it
  // finish with it.
  Status Remove(std::string_view name);
  std::vector<AdapterInfo> List() const;
  // The version new requests of `name` get; NotFound when not loaded.
  StatusOr<uint64_t> Version(std::string_view name) const;

  // Update support, scheduler thread only. The copy an update of `name`
  // should write (see the policy above). Allocates a new copy under kPin
  // while there are fewer than resident_versions of them.
  StatusOr<AdapterUpdateTarget> UpdateTarget(std::string_view name);
  // After an update wrote `target`: `name` now points at it (kPin) and its
  // atomic version is published.
  void Publish(std::string_view name,
               const std::shared_ptr<ResidentAdapter>& target);

  // Updates that found every copy in use and wrote one still held.
  int64_t pin_overflows() const { return pin_overflows_.load(); }

 private:
  struct Entry {
    std::string name;
    // copies[current] is what new requests get; the others are older
    // versions still held by requests (kPin), or spares.
    std::vector<std::shared_ptr<ResidentAdapter>> copies;
    size_t current = 0;
    uint64_t last_used = 0;
    bool Busy() const;
  };
  Entry* FindLocked(std::string_view name);
  const Entry* FindLocked(std::string_view name) const;
  // NotFound for `name`, listing what is loaded.
  Status NotLoadedLocked(std::string_view name) const;

  const ModelConfig model_;
  const uint64_t base_fingerprint_;
  const int64_t max_loras_;
  const int64_t max_lora_rank_;
  const LoraVersionPolicy policy_;
  const int64_t resident_versions_;

  mutable std::mutex mu_;
  std::vector<Entry> entries_;  // Guarded by mu_.
  uint64_t clock_ = 0;          // Guarded by mu_.
  uint64_t next_serial_ = 1;    // Guarded by mu_.
  std::atomic<int64_t> pin_overflows_{0};
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_ADAPTER_REGISTRY_H_
