// The decoder forward pass (Qwen3, Qwen2, Llama) over a paged KV cache, for
// ragged batches: every sequence in a call brings any number of new tokens
// (a whole prompt in prefill, one token in decode, or a chunk), and the call
// writes their keys and values into the sequence's pages and returns logits.
//
// The layers are the shared decoder steps (models/decoder/decoder_layer.h,
// which spells out the math); this class adds the paged KV cache: each
// layer writes its new keys and values into the sequences' pages and
// attends over them.
//
// The model reads its weights straight from the leaf list it was built on;
// leaf buffers never move, so in-place weight updates take effect on the
// next call without rebuilding anything.
#ifndef RLRT_MODELS_FORWARD_TRANSFORMER_H_
#define RLRT_MODELS_FORWARD_TRANSFORMER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/status.h"
#include "models/config/model_config.h"
#include "models/decoder/decoder_layer.h"
#include "models/decoder/decoder_leaves.h"
#include "models/forward/kv_cache.h"
#include "models/ops/linear.h"
#include "models/page_arena.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

struct TransformerOptions {
  // Most new tokens in one Forward call (sizes the workspace).
  int64_t max_batch_tokens = 1024;
  // Longest sequence (cached + new); at most max_position_embeddings.
  // 0: DefaultContextLength(config) (models/config/model_config.h).
  int64_t max_context = 0;
  // The row-invariant kernel makes prefill, decode and batched results
  // bit-identical (models/ops/linear.h); OpenBLAS is there to compare.
  MatmulKernel matmul = MatmulKernel::kRowInvariant;
  // The KV cache's dtype (the cache given to Forward must have it); unset
  // follows the weight matrices' dtype.
  std::optional<DType> kv_dtype = std::nullopt;
  // The largest LoRA adapter rank a sequence may bring (0: no adapters).
  int64_t max_lora_rank = 0;
};

// One sequence's part of a Forward call.
struct SequenceInput {
  std::span<const int32_t> tokens;  // The new tokens.
  int64_t start_position = 0;       // Tokens already in the cache.
  std::span<const int32_t> pages;   // Page table covering start + new tokens.
  // Logits for every new token; otherwise only for the last one.
  bool all_logits = false;
  // The LoRA adapter this sequence runs with (null: the base alone). Must
  // be made for this model, of rank at most max_lora_rank; each sequence's
  // results are bitwise those it gets alone, whatever the others use.
  const LoraAdapter* adapter = nullptr;
};

class Transformer {
 public:
  // `weights` must have the structure LeafSpecsFor(config) and outlive the
  // model; work runs on `mesh` (inline when null).
  static StatusOr<std::unique_ptr<Transformer>> Create(
      const ModelConfig& config, const ParamLeaves& weights, Mesh* mesh,
      const TransformerOptions& options = {});

  // Validates the whole batch first (token ids, positions, page tables, the
  // cache's shape, the output size; nothing is written on error), then runs
  // it. Logit rows come in batch order: all new tokens of a sequence with
  // all_logits, else its last one. One call at a time per model (calls are
  // serialized); allocates nothing.
  Status Forward(std::span<const SequenceInput> batch, KvCache& cache,
                 std::span<float> logits);

  static int64_t LogitRows(std::span<const SequenceInput> batch);
  const ModelConfig& config() const { return config_; }
  // The KV cache dtype Forward expects (TransformerOptions::kv_dtype).
  DType kv_dtype() const { return *options_.kv_dtype; }
  const TransformerOptions& options() const { return options_; }

 private:
  Transformer(const ModelConfig& config, const TransformerOptions& options,
              const ParamLeaves& weights, DecoderLeaves leaves, Mesh* mesh);
  static StatusOr<std::unique_ptr<Transformer>> CreateResolved(
      const ModelConfig& config, const ParamLeaves& weights, Mesh* mesh,
      const TransformerOptions& options);
  Status AllocateWorkspace();
  Status Validate(std::span<const SequenceInput> batch, const KvCache& cache,
                  std::span<float> logits) const;
  Status WriteKv(int64_t layer, int64_t rows, KvCache& cache);

  const ModelConfig config_;
  const TransformerOptions options_;
  Mesh* const mesh_;
  const DecoderLeaves leaves_;
  const DecoderLayers layers_;

  std::mutex forward_mu_;
  // Workspace, sized once for max_batch_tokens rows (guarded by forward_mu_).
  PageArena arena_;
  float* x_ = nullptr;  // [T, hidden] residual stream
  // The layer's activations; aliased where the sampler needs none again
  // (q/k norm in place, the residual added into x_, one normed buffer).
  LayerActivations act_;
  float* cos_ = nullptr;                   // [T, head_dim / 2]
  float* sin_ = nullptr;                   // [T, head_dim / 2]
  float* scores_ = nullptr;                // [workers, max_context]
  std::vector<double> rope_inv_freq_;      // [head_dim / 2], fixed per model
  std::vector<int32_t> tokens_;            // [T]
  std::vector<int32_t> positions_;         // [T]
  std::vector<const int32_t*> row_pages_;  // [T] the page table of each row
  std::vector<int64_t> logit_rows_;        // rows whose logits are returned
  std::vector<AttentionSequence> sequences_;
  std::vector<AdapterSegment> adapter_segments_;  // runs of one adapter
  float* lora_scratch_ = nullptr;                 // [T, max_lora_rank]
};

}  // namespace rlrt

#endif  // RLRT_MODELS_FORWARD_TRANSFORMER_H_
