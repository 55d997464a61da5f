// The decoder (Qwen3, Qwen2, Llama) on the training side: a forward pass over
// whole token sequences that returns per-target logprobs, and the backward
// pass that turns dLoss/dlogprob into parameter gradients.
//
// Bitwise agreement with the sampler. The forward runs the same decoder
// steps as the sampler (models/decoder/decoder_layer.h) with the
// row-invariant GEMM, and attention through the paged kernel itself over
// contiguous keys (one position per page). Every op is per row, so the
// logits of a position are bit-identical to what Transformer::Forward
// returns for the same tokens, in prefill or decode, and the logprobs are
// those the sampler reports at the same temperature.
//
// Memory: only the residual stream at each layer boundary is kept from the
// forward ((layers + 1) x tokens x hidden floats); Backward recomputes one
// layer's activations at a time from it, and the LM head's logits a chunk of
// rows at a time. That costs one more forward pass of compute (about a
// third more per step) and keeps activation memory linear in the layer
// count with a small constant. docs/architecture.md ("Training math") has
// the numbers.
//
// Threading: work runs on the mesh given at creation (inline when null);
// each op splits its outputs among the workers so that no two write the
// same memory, and every reduction has a fixed order: gradients are
// bit-identical for any worker count. One call at a time per model (calls
// are serialized). Forward and Backward allocate nothing.
#ifndef RLRT_MODELS_TRAIN_TRAINABLE_TRANSFORMER_H_
#define RLRT_MODELS_TRAIN_TRAINABLE_TRANSFORMER_H_

#include <algorithm>
#include <array>
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
#include "models/lora/lora_adapter.h"
#include "models/param_leaves.h"
#include "models/train/train_batch.h"
#include "models/train/train_workspace.h"
#include "partition/mesh.h"

namespace rlrt {

struct TrainableTransformerOptions {
  // Most tokens in one Forward call, all sequences together; sizes the
  // workspace (TrainableTransformer::workspace_bytes()).
  int64_t max_tokens = 2048;
  // LM-head rows whose logits exist at once ([rows, vocab] floats), in
  // Forward and again in Backward. The LM head's weight gradient is read
  // and written whole once per chunk (311 MB for Qwen3's vocabulary at
  // hidden 512), so chunks of 256 rather than 64 rows make a train step of
  // bench_trainer's ~100M shape up to 1.5x as fast (BF16, 2 workers; about
  // 1.1x in float32), for 116 MB more logits (155 MB at Qwen3's vocabulary).
  int64_t logits_chunk_rows = 256;
  // Logprobs are over the first sample_vocab logits (0: all of them), to
  // match a sampler that never draws ids the tokenizer lacks (Qwen3's
  // embedding has 267 padding rows past its 151,669 tokens). Token ids must
  // then be below it; the padding rows get zero gradient.
  int64_t sample_vocab = 0;
  // The dtype of the sampler's KV cache to agree with: with BF16, keys and
  // values are rounded to BF16 values before attention, as the sampler's
  // cache stores them. Unset follows the weight matrices' dtype (as the
  // sampler's default does).
  std::optional<DType> kv_dtype = std::nullopt;
  // With BF16 weights, the backward's products of each projection and of
  // the LM head: true runs them in BF16 with float32 accumulation (the
  // output gradient rounded to BF16, as PyTorch's autocast does; the
  // faster choice, README's bench_trainer figures); false keeps the output
  // gradient float32 and widens the weights (models/ops/linear.h
  // LinearBackwardArgs::bf16_products).
  bool bf16_backward_products = true;
  // A model that only scores (a frozen KL reference): the workspace keeps
  // two residual buffers instead of one per layer boundary and no
  // gradients ((L - 1) T h + T (2h + 2q + 2kv + I) floats less: 0.8 GB for
  // Qwen3-0.6B at the GSM8K demo's T = 5120), and Backward is refused.
  bool forward_only = false;
  // A LoRA adapter to run with from the start (SetAdapter), and the largest
  // rank SetAdapter may bring later (0: the start adapter's rank).
  const LoraAdapter* adapter = nullptr;
  int64_t max_lora_rank = 0;
};

class TrainableTransformer {
 public:
  // `weights` must have the structure LeafSpecsFor(config) and outlive the
  // model; its buffers are read in place, so updates to the weights take
  // effect on the next Forward.
  static StatusOr<std::unique_ptr<TrainableTransformer>> Create(
      const ModelConfig& config, const ParamLeaves& weights, Mesh* mesh,
      const TrainableTransformerOptions& options = {});

  // Runs the batch (validated first: token ids, lengths, target positions,
  // output sizes, temperature; nothing runs on error) and writes, for the
  // i-th target in batch order (sequence by sequence, positions ascending),
  //   logprobs[i] = log_softmax(logits / temperature)[token scored],
  // computed as the sampler computes it (TemperLogits, then TokenLogprob).
  // When `logits` is not empty it must hold num_targets x vocab floats and
  // receives the raw (untempered) logits rows. When `entropies` is not
  // empty (one per target) it receives the entropy of each target's
  // tempered distribution over the sampled ids (SoftmaxEntropy). Keeps what
  // Backward needs
  // until the next Forward. The weights must not change in between
  // (Backward recomputes activations from them and refuses to run if the
  // weights' version moved).
  Status Forward(std::span<const TrainSequence> batch, float temperature,
                 std::span<float> logprobs, std::span<float> logits = {},
                 std::span<float> entropies = {});

  // Adds dLoss/dparameter into `grads` (zero it to start a step; several
  // Backward calls accumulate), given dloss_dlogprob[i] = dLoss/dlogprobs[i]
  // for the last Forward's targets. Without an adapter, `grads` has the
  // weights' structure; with tied embeddings the LM head's gradient adds
  // into model.embed_tokens.weight. With an adapter, the base is frozen:
  // `grads` has the adapter's structure and receives dLoss/dA and dLoss/dB
  // only (no base gradient is computed). May run several times per Forward.
  // With BF16 weights, the gradients' matrices may be BF16 (half the
  // memory): each call then sums its contribution in float32 and rounds it
  // into them once, so one call's BF16 gradient is the float32 one rounded
  // to nearest even.
  Status Backward(std::span<const float> dloss_dlogprob, ParamLeaves& grads);

  // Runs later calls with `adapter` on every row (null: the base alone, as
  // a reference model that shares the base). It must be made for this
  // model, with rank at most the capacity set at creation, and outlive its
  // use; its contents are read in place like the weights'. Backward
  // refuses to run if the adapter changed since Forward.
  Status SetAdapter(const LoraAdapter* adapter);

  // Gives the workspace's memory back to the kernel until the next Forward
  // touches it again (a frozen reference between its scoring passes need
  // not hold it through the policy's step). Backward then needs a new
  // Forward.
  Status ReleaseWorkspace();

  // Targets of the last successful Forward (0 before any).
  int64_t num_targets() const;
  size_t workspace_bytes() const { return workspace_->bytes(); }
  const ModelConfig& config() const { return config_; }
  const TrainableTransformerOptions& options() const { return options_; }
  // The vocabulary logprobs are taken over.
  int64_t sample_vocab() const {
    return options_.sample_vocab > 0 ? options_.sample_vocab
                                     : config_.vocab_size;
  }

 private:
  TrainableTransformer(const ModelConfig& config,
                       const TrainableTransformerOptions& options,
                       const ParamLeaves& weights, DecoderLeaves leaves,
                       Mesh* mesh);

  // Runs layer l on the residual stream entering it, leaving its
  // activations in workspace_->layer; when x_out is not null, writes the
  // residual stream leaving it there.
  Status LayerForward(int64_t layer, float* x_out);
  // Base gradients go into `base` and adapter gradients into `lora`; either
  // may be null (frozen).
  Status LayerBackward(int64_t layer, ParamLeaves* base, ParamLeaves* lora);
  // Logits of targets [first, first + rows) into workspace_->head.logits
  // (the final norm and the LM head on those rows only).
  Status HeadForward(int64_t first, int64_t rows);
  // Tempers the chunk's logits in place and writes its logprobs.
  Status ChunkLogprobs(int64_t first, int64_t rows, std::span<float> logprobs,
                       std::span<float> entropies);
  // The chunk's gradient into the LM head (head_dw, float32: the leaf or
  // the BF16 gradient's scratch), the final norm and the residual.
  Status HeadBackward(int64_t first, int64_t rows,
                      std::span<const float> dloss_dlogprob, ParamLeaves* base,
                      float* head_dw);
  Status ValidateBackward(std::span<const float> dloss_dlogprob,
                          const ParamLeaves& grads) const;
  int64_t LogitsChunkRows() const {
    return std::min(options_.logits_chunk_rows, options_.max_tokens);
  }
  Status RmsNormGrad(const float* x, const float* weight, float* dy, float* dx,
                     bool accumulate, float* dweight, int64_t rows,
                     int64_t dim);

  const ModelConfig config_;
  const TrainableTransformerOptions options_;
  const ParamLeaves& weights_;
  const DecoderLeaves leaves_;
  Mesh* const mesh_;
  // Always the row-invariant kernel: it is what makes these logits equal
  // the sampler's.
  const DecoderLayers layers_;
  const float eps_;
  const std::vector<double> rope_inv_freq_;

  mutable std::mutex mu_;
  // Guarded by mu_: the last Forward's batch and temperature.
  std::unique_ptr<TrainWorkspace> workspace_;
  FlatBatch batch_;
  float temperature_ = 1.0f;
  uint64_t weights_version_ = 0;  // weights_.version() at the last Forward.
  const LoraAdapter* adapter_ = nullptr;
  uint64_t adapter_version_ = 0;  // adapter_'s version at the last Forward.
  int64_t lora_capacity_ = 0;     // the workspace's largest rank
  std::array<AdapterSegment, 1> adapter_rows_{};  // every row: adapter_
  bool forward_done_ = false;
};

}  // namespace rlrt

#endif  // RLRT_MODELS_TRAIN_TRAINABLE_TRANSFORMER_H_
