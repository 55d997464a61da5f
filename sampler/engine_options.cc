#include "sampler/engine_options.h"

#include <string>

#include "models/config/model_config.h"
#include "sampler/adapter_registry.h"

namespace rlrt {

Status ValidateEngineOptions(const EngineOptions& o) {
  auto positive = [](int64_t v, const char* name) -> Status {
    if (v < 1)
      return InvalidArgumentError(std::string(name) + " must be >= 1, got " +
                                  std::to_string(v));
    return OkStatus();
  };
  RETURN_IF_ERROR(positive(o.max_running_requests, "max_running_requests"));
  RETURN_IF_ERROR(positive(o.max_total_tokens, "max_total_tokens"));
  RETURN_IF_ERROR(positive(o.page_size, "page_size"));
  RETURN_IF_ERROR(positive(o.max_prefill_tokens, "max_prefill_tokens"));
  if (o.context_length < 0)
    return InvalidArgumentError("context_length must be >= 0 (0: default)");
  if (o.max_running_requests > 65536 || o.page_size > 65536 ||
      o.max_prefill_tokens > (int64_t{1} << 24) ||
      o.max_total_tokens > (int64_t{1} << 30)) {
    return InvalidArgumentError("engine sizes are beyond any sane limit");
  }
  if (o.max_loras < 0 || o.max_loras > 1024)
    return InvalidArgumentError("max_loras must be in [0, 1024], got " +
                                std::to_string(o.max_loras));
  if (o.max_lora_rank < 0 || o.max_lora_rank > 4096)
    return InvalidArgumentError("max_lora_rank must be in [0, 4096], got " +
                                std::to_string(o.max_lora_rank));
  if (o.max_loras > 0 && o.max_lora_rank == 0)
    return InvalidArgumentError(
        "max_lora_rank must be >= 1 when max_loras > 0");
  if (o.lora_resident_versions < 1 || o.lora_resident_versions > 64)
    return InvalidArgumentError(
        "lora_resident_versions must be in [1, 64], got " +
        std::to_string(o.lora_resident_versions));
  if (StatusOr<LoraVersionPolicy> policy =
          ParseLoraVersionPolicy(o.lora_version_policy);
      !policy.ok()) {
    return policy.status();
  }
  if (Status s = ParseDTypeFlag(o.kv_cache_dtype).status(); !s.ok()) {
    return InvalidArgumentError("kv_cache_dtype: " + std::string(s.message()));
  }
  return OkStatus();
}

}  // namespace rlrt
