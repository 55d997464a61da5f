#include "sampler/engine.h"

#include <glog/logging.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/timing.h"
#include "models/leaf_finite.h"
#include "models/leaf_init.h"
#include "models/lora/peft_io.h"
#include "models/tokenizer/chat_template.h"
#include "partition/device.h"
#include "sampler/transformer_batch_model.h"

namespace rlrt {
namespace {

// The tokenizer directory options name, or the model directory when it has
// tokenizer files; empty when there is none.
std::string TokenizerDir(const EngineOptions& options) {
  if (!options.tokenizer_dir.empty()) return options.tokenizer_dir;
  const std::string& dir = options.model.model_dir;
  std::error_code ec;
  if (!dir.empty() && std::filesystem::exists(
                          std::filesystem::path(dir) / "tokenizer.json", ec)) {
    return dir;
  }
  return "";
}

bool IsDummy(const ModelSource& source) {
  return source.load_format == "dummy" ||
         (source.load_format == "auto" && source.model_dir.empty());
}

}  // namespace

SamplerEngine::SamplerEngine(const EngineOptions& options, Mesh* mesh,
                             ModelConfig config,
                             std::unique_ptr<ParamLeaves> owned,
                             const ParamLeaves& weights)
    : options_(options),
      mesh_(mesh),
      config_(std::move(config)),
      owned_weights_(std::move(owned)),
      writable_weights_(owned_weights_.get()),
      weights_(weights),
      fingerprint_(weights_.fingerprint()),
      weight_dtype_(DecoderMatrixDType(weights_.specs())),
      next_seed_(std::random_device{}()) {}

StatusOr<std::unique_ptr<SamplerEngine>> SamplerEngine::Create(
    const EngineOptions& options, Mesh* mesh) {
  if (mesh == nullptr) return InvalidArgumentError("engine needs a mesh");
  RETURN_IF_ERROR(ValidateEngineOptions(options));
  const SteadyClock::time_point start = SteadyClock::now();
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(options.model, mesh));
  auto owned = std::make_unique<ParamLeaves>(std::move(loaded.weights));
  const ParamLeaves& weights = *owned;
  std::unique_ptr<SamplerEngine> engine(new SamplerEngine(
      options, mesh, std::move(loaded.config), std::move(owned), weights));
  RETURN_IF_ERROR(engine->Start(MillisecondsSince(start) / 1000.0));
  return engine;
}

StatusOr<std::unique_ptr<SamplerEngine>> SamplerEngine::CreateOnSharedBase(
    const EngineOptions& options, Mesh* mesh, const ModelConfig& config,
    const ParamLeaves& base) {
  if (mesh == nullptr) return InvalidArgumentError("engine needs a mesh");
  RETURN_IF_ERROR(ValidateEngineOptions(options));
  std::unique_ptr<SamplerEngine> engine(
      new SamplerEngine(options, mesh, config, nullptr, base));
  RETURN_IF_ERROR(engine->Start(0.0));
  return engine;
}

Status SamplerEngine::CheckBaseWritable() const {
  if (writable_weights_ != nullptr) return OkStatus();
  return FailedPreconditionError(
      "this engine's base weights are shared with the trainer and frozen "
      "(LoRA training): update the adapter (UpdateParams with lora_name), "
      "not the base");
}

Status SamplerEngine::Start(double load_seconds) {
  const std::string tokenizer_dir = TokenizerDir(options_);
  if (!tokenizer_dir.empty()) {
    ASSIGN_OR_RETURN(tokenizer_, LoadTokenizer(tokenizer_dir));
    if (tokenizer_->vocab_size() > config_.vocab_size) {
      return InvalidArgumentError("tokenizer in " + tokenizer_dir + " has " +
                                  std::to_string(tokenizer_->vocab_size()) +
                                  " ids but the model's vocabulary has " +
                                  std::to_string(config_.vocab_size));
    }
  }
  chat_template_ =
      ChatTemplateFor(ModelTypeName(config_.model_type), tokenizer_.get());
  sample_vocab_ = tokenizer_ ? tokenizer_->vocab_size() : config_.vocab_size;
  for (int64_t id : config_.eos_token_ids) {
    if (id >= 0 && id < sample_vocab_)
      eos_ids_.push_back(static_cast<int32_t>(id));
  }
  if (tokenizer_ && tokenizer_->eos_id())
    eos_ids_.push_back(*tokenizer_->eos_id());
  std::sort(eos_ids_.begin(), eos_ids_.end());
  eos_ids_.erase(std::unique(eos_ids_.begin(), eos_ids_.end()), eos_ids_.end());

  context_length_ = options_.context_length > 0 ? options_.context_length
                                                : DefaultContextLength(config_);
  if (context_length_ > config_.max_position_embeddings) {
    return InvalidArgumentError(
        "context_length " + std::to_string(context_length_) +
        " exceeds the model's max_position_embeddings " +
        std::to_string(config_.max_position_embeddings));
  }
  ASSIGN_OR_RETURN(const std::optional<DType> kv_choice,
                   ParseDTypeFlag(options_.kv_cache_dtype));
  const DType kv_dtype = kv_choice.value_or(weight_dtype_);
  ASSIGN_OR_RETURN(
      std::unique_ptr<KvCache> cache,
      KvCache::Create(KvCacheShape::For(config_, options_.max_total_tokens,
                                        options_.page_size, kv_dtype)));
  TransformerOptions transformer_options;
  transformer_options.kv_dtype = kv_dtype;
  transformer_options.max_batch_tokens =
      options_.max_prefill_tokens + options_.max_running_requests;
  transformer_options.max_context = context_length_;
  transformer_options.matmul = options_.matmul;
  transformer_options.max_lora_rank =
      options_.max_loras > 0 ? options_.max_lora_rank : 0;
  ASSIGN_OR_RETURN(
      std::unique_ptr<Transformer> transformer,
      Transformer::Create(config_, weights_, mesh_, transformer_options));
  model_ = std::make_unique<TransformerBatchModel>(std::move(transformer),
                                                   std::move(cache), weights_);
  adapters_ = std::make_unique<AdapterRegistry>(
      config_, options_.max_loras, options_.max_lora_rank,
      *ParseLoraVersionPolicy(options_.lora_version_policy),
      options_.lora_resident_versions);
  scheduler_config_ =
      SchedulerConfig{.max_running_requests = options_.max_running_requests,
                      .max_prefill_tokens = options_.max_prefill_tokens,
                      .page_size = options_.page_size,
                      .sample_vocab = sample_vocab_,
                      .enable_prefix_cache = options_.enable_prefix_cache};
  scheduler_ = std::make_unique<Scheduler>(scheduler_config_, *model_,
                                           tokenizer_.get(), mesh_);

  const KvCacheShape& kv = model_->cache().shape();
  nlohmann::json devices = nlohmann::json::array();
  for (const Device& d : mesh_->devices()) devices.push_back(DeviceToString(d));
  const bool dummy = IsDummy(options_.model);
  nlohmann::json ready = {
      {"phase", dummy ? "engine_ready_dummy" : "engine_ready"},
      {"model", options_.model.model_dir.empty() ? options_.model.preset
                                                 : options_.model.model_dir},
      {"model_type", ModelTypeName(config_.model_type)},
      {"mesh", mesh_->name()},
      {"devices", devices},
      {"dtype", DTypeFlagName(weight_dtype_)},
      {"load_format", dummy ? "dummy" : "safetensors"},
      {"num_leaves", weights_.size()},
      {"num_params", weights_.total_elements()},
      {"kv_capacity_tokens", kv.capacity_tokens()},
      {"kv_bytes", kv.bytes()},
      {"kv_cache_dtype", DTypeFlagName(kv.dtype)},
      {"page_size", kv.page_size},
      {"max_running_requests", options_.max_running_requests},
      {"context_length", context_length_},
      {"tokenizer", tokenizer_dir},
      {"chat_template", ChatTemplateKindName(chat_template_)},
      {"weight_version", weights_.version()},
      {"base_shared", base_is_shared()},
      {"max_loras", options_.max_loras},
      {"max_lora_rank", options_.max_lora_rank},
      {"lora_version_policy", options_.lora_version_policy},
      {"load_seconds", load_seconds}};
  ready_line_ = ready.dump();
  LOG(INFO) << ready_line_;

  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.weight_version = weights_.version();
    stats_.load = scheduler_->load();
  }
  scheduler_thread_ = std::thread([this] { SchedulerLoop(); });
  return OkStatus();
}

SamplerEngine::~SamplerEngine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  if (scheduler_thread_.joinable()) scheduler_thread_.join();
}

StatusOr<std::vector<int32_t>> SamplerEngine::PromptIds(
    const GenerateRequest& request) const {
  const int forms = !request.text.empty() + !request.messages.empty() +
                    !request.input_ids.empty();
  if (forms == 0) return InvalidArgumentError("empty prompt");
  if (forms > 1) {
    return InvalidArgumentError(
        "give exactly one of text, messages and input_ids");
  }
  if (!request.input_ids.empty()) {
    for (int32_t id : request.input_ids) {
      if (id < 0 || id >= sample_vocab_) {
        return InvalidArgumentError("unknown token id " + std::to_string(id) +
                                    " (vocabulary has " +
                                    std::to_string(sample_vocab_) + " ids)");
      }
    }
    return request.input_ids;
  }
  if (tokenizer_ == nullptr) {
    return InvalidArgumentError(
        "this engine has no tokenizer: send input_ids, not text");
  }
  std::vector<int32_t> ids;
  if (!request.messages.empty()) {
    if (chat_template_ == ChatTemplateKind::kNone) {
      return NoChatTemplateError(ModelTypeName(config_.model_type),
                                 tokenizer_->chat_template().has_value());
    }
    ASSIGN_OR_RETURN(std::string text,
                     ApplyChatTemplate(chat_template_, request.messages,
                                       request.chat_options));
    // The template writes its own special tokens (Llama 2's "<s>"), so the
    // post-processor adds none: one BOS, not two.
    ids = tokenizer_->Encode(text);
  } else {
    ids = tokenizer_->Encode(request.text, {.add_special_tokens = true});
  }
  if (ids.empty()) return InvalidArgumentError("prompt encodes to no tokens");
  return ids;
}

StatusOr<RequestHandle> SamplerEngine::Submit(GenerateRequest request) {
  auto prepared = std::make_unique<PreparedRequest>();
  prepared->submitted = SteadyClock::now();
  ASSIGN_OR_RETURN(prepared->prompt, PromptIds(request));
  RETURN_IF_ERROR(ValidateSamplingParams(request.sampling));
  RETURN_IF_ERROR(ValidateStopConditions(request.stop));
  if (request.n < 1) {
    return InvalidArgumentError("n must be >= 1, got " +
                                std::to_string(request.n));
  }
  if (!request.stop.stop_strings.empty() && tokenizer_ == nullptr) {
    return InvalidArgumentError("stop strings need a tokenizer");
  }
  const int64_t prompt = static_cast<int64_t>(prepared->prompt.size());
  // Compared without adding: max_new_tokens may be anything up to 2^63 - 1.
  if (request.stop.max_new_tokens > context_length_ - prompt) {
    return InvalidArgumentError(
        "prompt (" + std::to_string(prompt) + " tokens) + max_new_tokens (" +
        std::to_string(request.stop.max_new_tokens) +
        ") exceeds the context length " + std::to_string(context_length_));
  }
  RETURN_IF_ERROR(
      Scheduler::CheckFits(scheduler_config_, model_->cache().shape().num_pages,
                           prompt, request.stop.max_new_tokens, request.n));

  prepared->id = next_id_.fetch_add(1);
  prepared->sampling = request.sampling;
  const uint64_t seed =
      request.seed ? *request.seed : SampleSeed(next_seed_.fetch_add(1), -1);
  for (int32_t i = 0; i < request.n; ++i)
    prepared->seeds.push_back(SampleSeed(seed, i));
  prepared->stop = std::move(request.stop);
  if (!request.ignore_eos) {
    for (int32_t id : eos_ids_) prepared->stop.stop_token_ids.push_back(id);
  }
  prepared->return_logprobs = request.return_logprobs;
  prepared->on_token = std::move(request.on_token);
  if (!request.lora_name.empty()) {
    if (options_.max_loras == 0) {
      return InvalidArgumentError(
          "this engine serves no LoRA adapters (max_loras = 0); lora_name '" +
          request.lora_name + "' cannot be used");
    }
    ASSIGN_OR_RETURN(prepared->adapter, adapters_->Acquire(request.lora_name));
  }
  auto completion = std::make_shared<RequestCompletion>();
  prepared->completion = completion;
  RequestHandle handle(prepared->id, completion);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return FailedPreconditionError("engine is shutting down");
    incoming_.push_back(std::move(prepared));
  }
  wake_cv_.notify_one();
  return handle;
}

StatusOr<GenerateResult> SamplerEngine::Generate(GenerateRequest request) {
  ASSIGN_OR_RETURN(RequestHandle handle, Submit(std::move(request)));
  return handle.Wait();
}

void SamplerEngine::Abort(uint64_t request_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborts_.push_back(request_id);
  }
  wake_cv_.notify_one();
}

void SamplerEngine::RunControl(FunctionRef<void()> op) {
  ControlOp node{op};
  std::unique_lock<std::mutex> lock(mu_);
  if (control_tail_ != nullptr) {
    control_tail_->next = &node;
  } else {
    control_head_ = &node;
  }
  control_tail_ = &node;
  wake_cv_.notify_one();
  control_cv_.wait(lock, [&node] { return node.done; });
}

StatusOr<ApplyReport> SamplerEngine::ApplyUpdate(
    FunctionRef<StatusOr<ApplyReport>()> apply, bool flush_cache) {
  const SteadyClock::time_point start = SteadyClock::now();
  StatusOr<ApplyReport> result = apply();
  if (result.ok() && flush_cache) scheduler_->FlushPrefixCache();
  const double stall = MillisecondsSince(start);
  if (result.ok()) {
    ++local_stats_.updates_applied;
    local_stats_.last_update_stall_ms = stall;
    local_stats_.max_update_stall_ms =
        std::max(local_stats_.max_update_stall_ms, stall);
  } else {
    ++local_stats_.updates_refused;
  }
  PublishStats();
  return result;
}

StatusOr<ApplyReport> SamplerEngine::UpdateParams(
    const proto::UpdateParams& update, ApplyOptions options) {
  if (!update.lora_name().empty()) return UpdateAdapter(update, options);
  if (Status s = CheckBaseWritable(); !s.ok()) {
    LOG(WARNING) << "UpdateParams refused: " << s;
    return s;
  }
  // Not an error placeholder: building an error message would allocate.
  StatusOr<ApplyReport> result = ApplyReport{};
  RunControl([&] {
    result = ApplyUpdate(
        [&] {
          return ApplyUpdateParams(update, *writable_weights_, mesh_, options);
        },
        update.flush_cache());
  });
  if (!result.ok()) {
    LOG(WARNING) << "UpdateParams refused: " << result.status();
  }
  return result;
}

StatusOr<ApplyReport> SamplerEngine::UpdateFromLeaves(const ParamLeaves& source,
                                                      uint64_t version,
                                                      bool flush_cache,
                                                      VersionRule rule,
                                                      ApplyOptions options) {
  RETURN_IF_ERROR(CheckBaseWritable());
  StatusOr<ApplyReport> result = ApplyReport{};
  RunControl([&] {
    result = ApplyUpdate(
        [&] {
          return ApplyLeaves(source, version, *writable_weights_, mesh_, rule,
                             options);
        },
        flush_cache);
  });
  if (!result.ok()) {
    LOG(WARNING) << "UpdateFromLeaves refused: " << result.status();
  }
  return result;
}

StatusOr<ApplyReport> SamplerEngine::UpdateParamsSerialized(
    std::string_view serialized, std::string* lora_name) {
  std::lock_guard<std::mutex> lock(parse_mu_);
  // Parsed before the step boundary, so decoding is not paused for it.
  RETURN_IF_ERROR(ParseUpdateParams(serialized, &parse_scratch_));
  if (lora_name != nullptr) *lora_name = parse_scratch_.lora_name();
  return UpdateParams(parse_scratch_);
}

StatusOr<ApplyReport> SamplerEngine::UpdateAdapter(
    const proto::UpdateParams& update, ApplyOptions options) {
  const std::string& name = update.lora_name();
  auto refuse = [&](Status s) {
    LOG(WARNING) << "adapter update of '" << name << "' refused: " << s;
    return s;
  };
  if (options_.max_loras == 0) {
    return refuse(FailedPreconditionError(
        "this engine serves no LoRA adapters (max_loras = 0)"));
  }
  // A config in the message is parsed here, off the step boundary; for a
  // name not yet resident it also allocates the adapter the update fills.
  std::optional<LoraConfig> config;
  if (!update.lora_config_json().empty()) {
    StatusOr<LoraConfig> parsed = LoraConfigFromJson(update.lora_config_json());
    if (!parsed.ok())
      return refuse(parsed.status().WithContext("lora_config_json"));
    config = *parsed;
  }
  std::unique_ptr<LoraAdapter> fresh;
  if (!AdapterVersion(name).ok()) {
    if (!config) {
      return refuse(NotFoundError(
          "no LoRA adapter named '" + name +
          "' is resident, and the update carries no lora_config_json to "
          "create it from"));
    }
    StatusOr<std::unique_ptr<LoraAdapter>> made =
        LoraAdapter::Create(config_, *config, options_.max_lora_rank);
    if (!made.ok()) return refuse(made.status());
    fresh = *std::move(made);
  }
  StatusOr<ApplyReport> result = ApplyReport{};
  RunControl([&] {
    result = ApplyUpdate(
        [&]() -> StatusOr<ApplyReport> {
          ASSIGN_OR_RETURN(AdapterUpdateTarget target,
                           adapters_->UpdateTarget(name));
          if (!target.copy) {
            if (!fresh) {
              return NotFoundError("LoRA adapter '" + name +
                                   "' was unloaded before its update ran");
            }
            ASSIGN_OR_RETURN(
                ApplyReport report,
                ApplyUpdateParams(update, fresh->leaves(), mesh_, options));
            ASSIGN_OR_RETURN(
                std::string evicted,
                adapters_->Insert(name, std::move(fresh), "update"));
            if (!evicted.empty()) {
              LOG(INFO) << "adapter '" << evicted << "' evicted for '" << name
                        << "'";
            }
            return report;
          }
          const LoraAdapter& resident = *target.copy->adapter;
          if (config && !SameLoraShapeAndScale(*config, resident.config())) {
            return InvalidArgumentError(
                "LoRA adapter '" + name +
                "' is resident with another "
                "config (r=" +
                std::to_string(resident.rank()) + ", " +
                LoraTargetModulesString(resident.config().target_mask) +
                "); unload it before sending a different one");
          }
          if (update.version() <= target.version_in_force) {
            return FailedPreconditionError(
                "update version " + std::to_string(update.version()) +
                " of adapter '" + name +
                "' is not newer than its version in force (" +
                std::to_string(target.version_in_force) + ")");
          }
          ASSIGN_OR_RETURN(
              ApplyReport report,
              ApplyUpdateParams(update, target.copy->adapter->leaves(), mesh_,
                                options));
          adapters_->Publish(name, target.copy);
          return report;
        },
        // Pages an adapter computed are keyed by its version: no flush.
        /*flush_cache=*/false);
  });
  if (!result.ok()) return refuse(result.status());
  return result;
}

StatusOr<std::string> SamplerEngine::LoadAdapter(std::string_view name,
                                                 const std::string& dir) {
  if (options_.max_loras == 0) {
    return FailedPreconditionError(
        "this engine serves no LoRA adapters (max_loras = 0)");
  }
  StatusOr<std::unique_ptr<LoraAdapter>> adapter =
      LoadPeftAdapter(dir, config_, options_.max_lora_rank);
  if (!adapter.ok()) {
    return adapter.status().WithContext(
        "LoRA adapter '" + std::string(name) + "' from " + dir +
        " (this engine: max_lora_rank " +
        std::to_string(options_.max_lora_rank) + ")");
  }
  return AddAdapter(name, *std::move(adapter), dir);
}

StatusOr<std::string> SamplerEngine::AddAdapter(
    std::string_view name, std::unique_ptr<LoraAdapter> adapter,
    std::string source) {
  if (options_.max_loras == 0) {
    return FailedPreconditionError(
        "this engine serves no LoRA adapters (max_loras = 0)");
  }
  if (adapter == nullptr) return InvalidArgumentError("null adapter");
  if (const std::optional<NonFiniteElement> bad =
          FindNonFinite(adapter->leaves(), nullptr)) {
    return NonFiniteRefusal(adapter->leaves(), *bad);
  }
  ASSIGN_OR_RETURN(std::string evicted,
                   adapters_->Insert(name, std::move(adapter), source));
  LOG(INFO) << nlohmann::json{
      {"phase", "lora_loaded"},
      {"name", name},
      {"source", source},
      {"evicted",
       evicted}}.dump();
  return evicted;
}

Status SamplerEngine::UnloadAdapter(std::string_view name) {
  return adapters_->Remove(name);
}

std::vector<AdapterInfo> SamplerEngine::Adapters() const {
  return adapters_->List();
}

StatusOr<uint64_t> SamplerEngine::AdapterVersion(std::string_view name) const {
  return adapters_->Version(name);
}

StatusOr<LeafChecksums> SamplerEngine::WeightsChecksum() {
  LeafChecksums sums;
  RunControl([&] { sums = ComputeChecksums(weights_, mesh_); });
  return sums;
}

StatusOr<PerturbReport> SamplerEngine::PerturbWeights(uint64_t seed,
                                                      double scale,
                                                      int64_t num_leaves) {
  RETURN_IF_ERROR(CheckBaseWritable());
  PerturbReport report;
  Status status;
  RunControl([&] {
    ParamLeaves& weights = *writable_weights_;
    if (weights.version() >= kMaxWeightVersion) {
      status = FailedPreconditionError(
          "the weight version is at its maximum; perturbed weights would "
          "have no version of their own");
      return;
    }
    report.before = ComputeChecksums(weights, mesh_);
    status = Perturb(weights, seed, scale, num_leaves, mesh_);
    report.after = ComputeChecksums(weights, mesh_);
    if (!status.ok()) return;
    // Other weights, another version: results never name a version whose
    // weights changed under it. Cached KV was computed by the old weights.
    weights.set_version(weights.version() + 1);
    report.version = weights.version();
    scheduler_->FlushPrefixCache();
    PublishStats();
  });
  RETURN_IF_ERROR(status);
  return report;
}

EngineStats SamplerEngine::Stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

EngineBuffers SamplerEngine::buffers() const {
  return EngineBuffers{.weights = weights_.data(0),
                       .kv_cache = model_->cache().LayerView(0).keys,
                       .structure_fingerprint = weights_.fingerprint()};
}

void SamplerEngine::PublishStats() {
  local_stats_.load = scheduler_->load();
  local_stats_.scheduler = scheduler_->stats();
  local_stats_.weight_version = weights_.version();
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_ = local_stats_;
}

void SamplerEngine::SchedulerLoop() {
  if (Status pinned = PinCallingThreadToDevices(mesh_->devices());
      !pinned.ok()) {
    LOG(WARNING) << "scheduler thread not pinned: " << pinned;
  }
  scheduler_tid_.store(static_cast<pid_t>(syscall(SYS_gettid)));
  std::vector<std::unique_ptr<PreparedRequest>> incoming;
  std::vector<uint64_t> aborts;
  bool idle = true;
  int64_t steps_seen = 0;
  bool kv_pages_freed = false;
  while (true) {
    ControlOp* control = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_cv_.wait(lock, [&] {
        return stopping_ || !idle || !incoming_.empty() || !aborts_.empty() ||
               control_head_ != nullptr;
      });
      if (stopping_) break;
      incoming.swap(incoming_);
      aborts.swap(aborts_);
      control = control_head_;
      control_head_ = control_tail_ = nullptr;
    }
    // Control operations run here, between two steps, when nothing reads
    // the weights.
    const bool ran_control = control != nullptr;
    if (ran_control) RunAndComplete(control);
    for (auto& r : incoming) scheduler_->Enqueue(std::move(r));
    incoming.clear();
    for (uint64_t id : aborts) scheduler_->Abort(id);
    aborts.clear();
    if (Status s = scheduler_->Step(); !s.ok()) {
      LOG(WARNING) << "engine step failed: " << s;
    }
    idle = scheduler_->idle();
    // Pages are freed by steps (finished samples) and by control operations
    // (an update flushes the prefix cache); an idle engine gives them back
    // once, not on every wake.
    kv_pages_freed |= ran_control || scheduler_->stats().steps != steps_seen;
    steps_seen = scheduler_->stats().steps;
    if (idle && kv_pages_freed && options_.release_idle_kv_memory) {
      kv_pages_freed = false;
      if (Status s = scheduler_->ReleaseFreeKvMemory(); !s.ok()) {
        LOG(WARNING) << "idle KV pages not released: " << s;
      }
    }
    PublishStats();
  }
  // Control operations still queued run now, so no caller waits forever.
  std::unique_lock<std::mutex> lock(mu_);
  ControlOp* control = control_head_;
  control_head_ = control_tail_ = nullptr;
  incoming.swap(incoming_);
  lock.unlock();
  if (control != nullptr) RunAndComplete(control);
  for (auto& r : incoming) scheduler_->Enqueue(std::move(r));
  scheduler_->AbortAll();
  PublishStats();
}

void SamplerEngine::RunAndComplete(ControlOp* list) {
  for (ControlOp* op = list; op != nullptr; op = op->next) op->run();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (ControlOp* op = list; op != nullptr;) {
      ControlOp* next = op->next;  // `op` dies once its caller sees done.
      op->done = true;
      op = next;
    }
  }
  control_cv_.notify_all();
}

}  // namespace rlrt
