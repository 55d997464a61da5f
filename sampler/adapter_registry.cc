#include "sampler/adapter_registry.h"

#include <algorithm>
#include <array>

#include "models/hash.h"

namespace rlrt {

StatusOr<LoraVersionPolicy> ParseLoraVersionPolicy(std::string_view text) {
  if (text == "latest") return LoraVersionPolicy::kLatest;
  if (text == "pin") return LoraVersionPolicy::kPin;
  return InvalidArgumentError(
      "lora_version_policy must be 'latest' or 'pin', "
      "got '" +
      std::string(text) + "'");
}

uint64_t ResidentAdapter::CacheSpace() const {
  const std::array<uint64_t, 2> key = {serial, adapter->leaves().version()};
  // Never 0: that is the base's space.
  return HashBytes(key.data(), sizeof(key), 0x6c6f7261ull) | 1;
}

bool AdapterRegistry::Entry::Busy() const {
  // Only the registry copies these pointers under its mutex, so a count of
  // 1 cannot grow behind the caller's back.
  return std::any_of(copies.begin(), copies.end(),
                     [](const auto& c) { return c.use_count() > 1; });
}

AdapterRegistry::AdapterRegistry(const ModelConfig& model, int64_t max_loras,
                                 int64_t max_lora_rank,
                                 LoraVersionPolicy policy,
                                 int64_t resident_versions)
    : model_(model),
      base_fingerprint_(LoraBaseShapeFingerprint(model)),
      max_loras_(max_loras),
      max_lora_rank_(max_lora_rank),
      policy_(policy),
      resident_versions_(std::max<int64_t>(resident_versions, 1)) {}

Status AdapterRegistry::CheckFits(const LoraAdapter& adapter) const {
  if (adapter.base_shape_fingerprint() != base_fingerprint_) {
    return InvalidArgumentError(
        "the adapter was made for another base model (its layer count or "
        "projection shapes differ from this engine's " +
        std::string(ModelTypeName(model_.model_type)) + " with " +
        std::to_string(model_.num_hidden_layers) + " layers)");
  }
  if (adapter.rank() > max_lora_rank_) {
    return InvalidArgumentError("adapter rank " +
                                std::to_string(adapter.rank()) +
                                " exceeds this engine's max_lora_rank " +
                                std::to_string(max_lora_rank_));
  }
  return OkStatus();
}

AdapterRegistry::Entry* AdapterRegistry::FindLocked(std::string_view name) {
  for (Entry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

const AdapterRegistry::Entry* AdapterRegistry::FindLocked(
    std::string_view name) const {
  for (const Entry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

Status AdapterRegistry::NotLoadedLocked(std::string_view name) const {
  std::string names;
  for (const Entry& e : entries_) {
    if (!names.empty()) names += ", ";
    names += "'" + e.name + "'";
  }
  return NotFoundError(
      "no LoRA adapter named '" + std::string(name) +
      "' is loaded (loaded: " + (names.empty() ? "none" : names) + ")");
}

StatusOr<std::shared_ptr<ResidentAdapter>> AdapterRegistry::Acquire(
    std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry* e = FindLocked(name);
  if (e == nullptr) {
    return NotLoadedLocked(name);
  }
  e->last_used = ++clock_;
  return e->copies[e->current];
}

StatusOr<std::string> AdapterRegistry::Insert(
    std::string_view name, std::unique_ptr<LoraAdapter> adapter,
    std::string source) {
  if (name.empty()) return InvalidArgumentError("an adapter needs a name");
  RETURN_IF_ERROR(CheckFits(*adapter));
  std::lock_guard<std::mutex> lock(mu_);
  if (FindLocked(name) != nullptr) {
    return AlreadyExistsError("a LoRA adapter named '" + std::string(name) +
                              "' is already loaded; unload it first");
  }
  std::string evicted;
  if (static_cast<int64_t>(entries_.size()) >= max_loras_) {
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->Busy()) continue;
      if (victim == entries_.end() || it->last_used < victim->last_used)
        victim = it;
    }
    if (victim == entries_.end()) {
      return ResourceExhaustedError(
          "all " + std::to_string(max_loras_) +
          " resident LoRA adapters (max_loras) are serving requests; "
          "retry when one is idle or unload one");
    }
    evicted = victim->name;
    entries_.erase(victim);
  }
  Entry e;
  e.name = std::string(name);
  e.copies.push_back(std::make_shared<ResidentAdapter>(
      e.name, next_serial_++, std::move(adapter), std::move(source)));
  e.last_used = ++clock_;
  entries_.push_back(std::move(e));
  return evicted;
}

Status AdapterRegistry::Remove(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  const Entry* e = FindLocked(name);
  if (e == nullptr) return NotLoadedLocked(name);
  entries_.erase(entries_.begin() + (e - entries_.data()));
  return OkStatus();
}

std::vector<AdapterInfo> AdapterRegistry::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AdapterInfo> out;
  for (const Entry& e : entries_) {
    const ResidentAdapter& r = *e.copies[e.current];
    // config() is fixed at creation, so reading it here races with nothing.
    const LoraConfig& config = r.adapter->config();
    out.push_back(AdapterInfo{
        .name = e.name,
        .source = r.source,
        .version = r.version.load(),
        .rank = config.rank,
        .target_modules = LoraTargetModulesString(config.target_mask),
        .busy = e.Busy()});
  }
  return out;
}

StatusOr<uint64_t> AdapterRegistry::Version(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Entry* e = FindLocked(name);
  if (e == nullptr) {
    return NotLoadedLocked(name);
  }
  return e->copies[e->current]->version.load();
}

StatusOr<AdapterUpdateTarget> AdapterRegistry::UpdateTarget(
    std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry* e = FindLocked(name);
  if (e == nullptr) return AdapterUpdateTarget{};
  const std::shared_ptr<ResidentAdapter>& current = e->copies[e->current];
  const uint64_t in_force = current->adapter->leaves().version();
  if (policy_ == LoraVersionPolicy::kLatest)
    return AdapterUpdateTarget{current, in_force};
  std::shared_ptr<ResidentAdapter> target;
  for (size_t i = 0; i < e->copies.size(); ++i) {
    if (i != e->current && e->copies[i].use_count() == 1) {
      target = e->copies[i];
      break;
    }
  }
  if (!target && static_cast<int64_t>(e->copies.size()) < resident_versions_) {
    ASSIGN_OR_RETURN(std::unique_ptr<LoraAdapter> copy,
                     LoraAdapter::Create(model_, current->adapter->config(),
                                         max_lora_rank_));
    e->copies.push_back(std::make_shared<ResidentAdapter>(
        e->name, next_serial_++, std::move(copy), current->source));
    target = e->copies.back();
  }
  if (!target) {
    // Every copy is held: overwrite the oldest version.
    target = *std::min_element(e->copies.begin(), e->copies.end(),
                               [](const auto& a, const auto& b) {
                                 return a->adapter->leaves().version() <
                                        b->adapter->leaves().version();
                               });
    pin_overflows_.fetch_add(1);
  }
  return AdapterUpdateTarget{std::move(target), in_force};
}

void AdapterRegistry::Publish(std::string_view name,
                              const std::shared_ptr<ResidentAdapter>& target) {
  target->version.store(target->adapter->leaves().version());
  std::lock_guard<std::mutex> lock(mu_);
  Entry* e = FindLocked(name);
  if (e == nullptr) return;
  for (size_t i = 0; i < e->copies.size(); ++i) {
    if (e->copies[i] == target) e->current = i;
  }
}

}  // namespace rlrt
