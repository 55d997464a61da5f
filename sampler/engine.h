// The rollout engine: a model on the rollout mesh, a scheduler thread doing
// continuous batching over a paged KV cache, and in-place weight updates
// between decode steps.
//
// Threads. Any thread may submit, wait, abort, update or ask for checksums.
// One scheduler thread (pinned to the mesh's cores) owns the scheduler, the
// page pool and the prefix cache; model work runs on the mesh's workers.
// Weight updates, checksums and perturbations are "control operations": the
// calling thread hands one over and blocks; the scheduler runs it between
// two steps, when nothing reads the weights, so an update is atomic with
// respect to decoding: every token comes from exactly one weight version
// (reported per token). The hand-off is an intrusive list of nodes on the
// callers' stacks, so the update path allocates nothing.
//
// Never rebuild: every buffer (weights, KV pool, workspaces, logits) is
// allocated in Create and kept for the engine's life; updates copy into the
// existing weight buffers.
#ifndef RLRT_SAMPLER_ENGINE_H_
#define RLRT_SAMPLER_ENGINE_H_

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/function_ref.h"
#include "base/status.h"
#include "models/config/model_config.h"
#include "models/forward/kv_cache.h"
#include "models/forward/transformer.h"
#include "models/leaf_checksum.h"
#include "models/lora/lora_adapter.h"
#include "models/param_leaves.h"
#include "models/tokenizer/chat_template.h"
#include "models/tokenizer/tokenizer.h"
#include "partition/mesh.h"
#include "proto/update_params.pb.h"
#include "sampler/adapter_registry.h"
#include "sampler/engine_options.h"
#include "sampler/request.h"
#include "sampler/request_handle.h"
#include "sampler/scheduler.h"
#include "sampler/update_apply.h"

namespace rlrt {

struct EngineStats {
  SchedulerLoad load;
  SchedulerStats scheduler;
  uint64_t weight_version = 0;
  int64_t updates_applied = 0;
  int64_t updates_refused = 0;
  // Time decoding was paused for the last applied update (validation and
  // copy, at a step boundary), and the longest such pause.
  double last_update_stall_ms = 0;
  double max_update_stall_ms = 0;
};

struct PerturbReport {
  LeafChecksums before;
  LeafChecksums after;
  uint64_t version = 0;  // The perturbed weights' own version.
};

// Addresses of the engine's long-lived buffers; equal before and after any
// number of updates (tests use them to show nothing was rebuilt).
struct EngineBuffers {
  const void* weights = nullptr;
  const void* kv_cache = nullptr;
  uint64_t structure_fingerprint = 0;
};

class TransformerBatchModel;

class SamplerEngine {
 public:
  // Loads (or dummy-initialises) the model onto `mesh`, which must outlive
  // the engine, allocates every buffer and starts the scheduler thread.
  static StatusOr<std::unique_ptr<SamplerEngine>> Create(
      const EngineOptions& options, Mesh* mesh);
  // An engine over base weights someone else owns (the LoRA trainer's
  // frozen base, so one copy serves both meshes): `base` is read in place
  // and must outlive the engine and stay unchanged. Base updates, reloads
  // and perturbations are refused; adapters are served and updated as
  // usual. options.model is ignored (the tokenizer still comes from
  // options.tokenizer_dir).
  static StatusOr<std::unique_ptr<SamplerEngine>> CreateOnSharedBase(
      const EngineOptions& options, Mesh* mesh, const ModelConfig& config,
      const ParamLeaves& base);
  // Stops the scheduler; unfinished requests complete as aborted.
  ~SamplerEngine();
  SamplerEngine(const SamplerEngine&) = delete;
  SamplerEngine& operator=(const SamplerEngine&) = delete;

  // Validates and tokenizes on the calling thread, then queues. A bad
  // request fails here alone, with the reason; it never reaches the
  // scheduler.
  StatusOr<RequestHandle> Submit(GenerateRequest request);
  // Submit and wait.
  StatusOr<GenerateResult> Generate(GenerateRequest request);
  // The request finishes at the next step boundary with reason "abort" and
  // whatever it generated so far; unknown ids are ignored.
  void Abort(uint64_t request_id);

  // Validated, atomic, in place, at a step boundary (see update_apply.h);
  // with flush_cache, cached prefixes are dropped too. Blocks until done.
  // An update with lora_name carries one adapter's leaves instead (see
  // UpdateAdapter below).
  StatusOr<ApplyReport> UpdateParams(const proto::UpdateParams& update,
                                     ApplyOptions options = {});
  // Parses (on the calling thread, into a reused message) then applies;
  // *lora_name (may be null) receives the message's lora_name.
  StatusOr<ApplyReport> UpdateParamsSerialized(
      std::string_view serialized, std::string* lora_name = nullptr);
  // Weights already in memory (e.g. a checkpoint read from disk), with the
  // same contract as UpdateParams: same structure, a version `rule` allows
  // (newer, by default), applied whole at a step boundary or refused with
  // nothing changed.
  StatusOr<ApplyReport> UpdateFromLeaves(const ParamLeaves& source,
                                         uint64_t version, bool flush_cache,
                                         VersionRule rule = VersionRule::kNewer,
                                         ApplyOptions options = {});
  StatusOr<LeafChecksums> WeightsChecksum();

  // ---- LoRA adapters (resident by name; see adapter_registry.h) ---------
  // Reads a PEFT adapter directory on the calling thread and makes it
  // resident as `name`; returns the name it evicted (or ""). A bad adapter
  // (files missing or truncated, another base's shapes, rank above
  // max_lora_rank, unknown target module) is refused with nothing changed.
  StatusOr<std::string> LoadAdapter(std::string_view name,
                                    const std::string& dir);
  // The same for an adapter already in memory.
  StatusOr<std::string> AddAdapter(std::string_view name,
                                   std::unique_ptr<LoraAdapter> adapter,
                                   std::string source);
  // Requests already running with it finish with it.
  Status UnloadAdapter(std::string_view name);
  std::vector<AdapterInfo> Adapters() const;
  // The version of adapter `name` new requests get; NotFound if absent.
  StatusOr<uint64_t> AdapterVersion(std::string_view name) const;
  // Whether the base weights are shared and frozen (CreateOnSharedBase).
  bool base_is_shared() const { return writable_weights_ == nullptr; }
  // Adds N(0, scale^2) noise to the first num_leaves leaves (a diagnostic).
  // The perturbed weights get the next version, so every result sampled
  // from them says so, and the prefix cache is flushed; an update must then
  // be newer than that version.
  StatusOr<PerturbReport> PerturbWeights(uint64_t seed, double scale,
                                         int64_t num_leaves);

  EngineStats Stats() const;
  // The "engine_ready" JSON line logged by Create (phase
  // "engine_ready_dummy" for dummy weights).
  const std::string& ready_line() const { return ready_line_; }
  EngineBuffers buffers() const;

  const ModelConfig& config() const { return config_; }
  // The dtype of the served weight matrices (fixed for the engine's life;
  // updates and reloads must bring the same).
  DType weight_dtype() const { return weight_dtype_; }
  // The served leaf structure (fixed for the engine's life, so readable
  // from any thread): what an update must match, leaf by leaf.
  const std::vector<LeafSpec>& weight_specs() const { return weights_.specs(); }
  const AdapterRegistry* adapters() const { return adapters_.get(); }
  const EngineOptions& options() const { return options_; }
  // Null when the engine has no tokenizer.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  // The template chat requests are rendered with, chosen from the model
  // type and the tokenizer (ChatTemplateFor); with kNone they are refused.
  ChatTemplateKind chat_template() const { return chat_template_; }
  Mesh* mesh() const { return mesh_; }
  int64_t context_length() const { return context_length_; }
  // Ids below this are valid in prompts and can be sampled.
  int64_t vocab_size() const { return sample_vocab_; }
  // Kernel thread id of the scheduler thread (0 until it has started and
  // pinned itself).
  pid_t scheduler_thread_id() const { return scheduler_tid_.load(); }

 private:
  struct ControlOp {
    FunctionRef<void()> run;
    bool done = false;
    ControlOp* next = nullptr;
  };

  SamplerEngine(const EngineOptions& options, Mesh* mesh, ModelConfig config,
                std::unique_ptr<ParamLeaves> owned, const ParamLeaves& weights);
  Status Start(double load_seconds);
  // UpdateParams for an update with lora_name: into the resident adapter of
  // that name (its version must be newer; under "pin" another copy of it),
  // or, for a name not resident and a message with lora_config_json, into
  // a new adapter made resident once the update is applied.
  StatusOr<ApplyReport> UpdateAdapter(const proto::UpdateParams& update,
                                      ApplyOptions options);
  // Base writes are refused on a shared base.
  Status CheckBaseWritable() const;
  StatusOr<std::vector<int32_t>> PromptIds(
      const GenerateRequest& request) const;
  // Runs `op` on the scheduler thread between two steps; blocks until done.
  void RunControl(FunctionRef<void()> op);
  // Scheduler thread: runs a detached list of control operations, then
  // marks each done and wakes the callers.
  void RunAndComplete(ControlOp* list);
  // Scheduler thread: runs one weight update and records its stall.
  StatusOr<ApplyReport> ApplyUpdate(FunctionRef<StatusOr<ApplyReport>()> apply,
                                    bool flush_cache);
  void SchedulerLoop();
  void PublishStats();

  const EngineOptions options_;
  Mesh* const mesh_;
  const ModelConfig config_;
  // The base weights: owned_weights_, or a shared base (then
  // writable_weights_ is null). Written only by control operations on the
  // scheduler thread.
  std::unique_ptr<ParamLeaves> owned_weights_;
  ParamLeaves* const writable_weights_;
  const ParamLeaves& weights_;
  std::unique_ptr<AdapterRegistry> adapters_;
  const uint64_t fingerprint_;
  const DType weight_dtype_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplateKind chat_template_ = ChatTemplateKind::kNone;
  int64_t sample_vocab_ = 0;
  int64_t context_length_ = 0;
  std::vector<int32_t> eos_ids_;
  std::unique_ptr<TransformerBatchModel> model_;
  std::unique_ptr<Scheduler> scheduler_;  // Scheduler thread only.
  SchedulerConfig scheduler_config_;
  std::string ready_line_;

  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> next_seed_;

  // Hand-off from callers to the scheduler thread.
  std::mutex mu_;
  std::condition_variable wake_cv_;     // Work for the scheduler.
  std::condition_variable control_cv_;  // A control operation finished.
  std::vector<std::unique_ptr<PreparedRequest>> incoming_;  // Guarded by mu_.
  std::vector<uint64_t> aborts_;                            // Guarded by mu_.
  ControlOp* control_head_ = nullptr;                       // Guarded by mu_.
  ControlOp* control_tail_ = nullptr;                       // Guarded by mu_.
  bool stopping_ = false;                                   // Guarded by mu_.

  // Serialized updates are parsed into one reused message.
  std::mutex parse_mu_;
  proto::UpdateParams parse_scratch_;  // Guarded by parse_mu_.

  // Written by the scheduler thread after each step and control operation.
  mutable std::mutex stats_mu_;
  EngineStats stats_;  // Guarded by stats_mu_.
  // Scheduler-thread-only counters, published into stats_.
  EngineStats local_stats_;

  std::atomic<pid_t> scheduler_tid_{0};
  std::thread scheduler_thread_;
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_ENGINE_H_
