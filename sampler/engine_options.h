// How a SamplerEngine is built: where its model and tokenizer come from, and
// the sizes that fix every buffer it will ever use.
#ifndef RLRT_SAMPLER_ENGINE_OPTIONS_H_
#define RLRT_SAMPLER_ENGINE_OPTIONS_H_

#include <cstdint>
#include <string>

#include "base/status.h"
#include "models/forward/model_source.h"
#include "models/ops/linear.h"

namespace rlrt {

struct EngineOptions {
  ModelSource model;  // model_dir or preset; load_format; dummy seed.
  // A directory with tokenizer.json and tokenizer_config.json. Empty: the
  // model directory when it has them, else no tokenizer (token-id requests
  // only: no text, no stop strings).
  std::string tokenizer_dir;

  // Samples decoding at once (a request with n samples counts n).
  int64_t max_running_requests = 64;
  // KV pool size in tokens, rounded up to whole pages.
  int64_t max_total_tokens = 16384;
  int64_t page_size = 16;
  // The KV cache's elements: "auto" (the weight matrices' dtype),
  // "bfloat16" or "float32". The cache holds max_total_tokens either way;
  // BF16 takes half the bytes (the ready line's kv_bytes). A trainer that
  // must agree with this sampler bit for bit uses the same dtype
  // (GrpoOptions::kv_dtype; both default to following the weights).
  std::string kv_cache_dtype = "auto";
  // Longest prompt + completion. 0: DefaultContextLength(config).
  int64_t context_length = 0;
  // Prompt tokens processed per step at most; longer prompts are prefilled
  // in chunks, interleaved with decode steps.
  int64_t max_prefill_tokens = 2048;
  // Reuse the KV of cached prompt pages (full pages only).
  bool enable_prefix_cache = true;
  MatmulKernel matmul = MatmulKernel::kRowInvariant;
  // When the engine runs out of work, give the memory of its free KV pages
  // back to the kernel (cached prefixes keep theirs). Beside a trainer in
  // one process, the pages the last rollouts touched then do not sit in
  // the training step's peak (the GRPO demo turns it on). Off by default:
  // the next requests fault the pages in again, zeroed, which took 0.06 s
  // per GiB right after the release on this project's VMs, but about 1 s
  // per GiB once the host had reclaimed the memory (seconds later).
  bool release_idle_kv_memory = false;

  // LoRA adapters served unmerged beside the base (requests name one with
  // GenerateRequest::lora_name): at most max_loras resident at once (0:
  // none; loading one more evicts the least recently used idle adapter),
  // each of rank at most max_lora_rank (which sizes the forward's
  // workspace).
  int64_t max_loras = 4;
  int64_t max_lora_rank = 64;
  // "latest": an adapter update reaches running requests at the next step.
  // "pin": a request finishes under the adapter version it was submitted
  // with; up to lora_resident_versions copies of an adapter are kept for
  // that (max_staleness + 1 in an RL run).
  std::string lora_version_policy = "latest";
  int64_t lora_resident_versions = 2;
};

// Every size positive and consistent; names the offending option.
Status ValidateEngineOptions(const EngineOptions& options);

}  // namespace rlrt

#endif  // RLRT_SAMPLER_ENGINE_OPTIONS_H_
