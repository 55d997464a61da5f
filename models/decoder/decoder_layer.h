// The decoder's computation, written once for both passes that run it: the
// sampler's Transformer (over a paged KV cache, a few new tokens per
// sequence) and the trainer's TrainableTransformer (whole sequences, every
// activation kept for the backward pass). Both call these steps, so the
// two produce the same bits for the same tokens and weights, and a new
// weight dtype, an adapter on a projection or a new architecture is added
// here, in one place.
//
// Per layer, as Hugging Face computes it (in float32; with BF16 weights the
// inputs of the seven projections and the LM head are rounded to BF16
// inside LinearForward, models/ops/linear.h, and nothing else changes; with
// a BF16 KV cache, k (after rope) and v are rounded to BF16 values before
// attention, in both passes, so the trainer attends over exactly what the
// sampler's cache holds):
//   n1  = rms_norm(x, input_layernorm)
//   q   = rope(q_norm(q_proj(n1))),  k = rope(k_norm(k_proj(n1))),
//   v   = v_proj(n1)                 (q/k norm: Qwen3; q/k/v bias: Qwen2)
//   mid = x + o_proj(attention(q, k, v))
//   n2  = rms_norm(mid, post_attention_layernorm)
//   x'  = mid + down_proj(silu(gate_proj(n2)) * up_proj(n2))
// and at the top, logits = lm_head(rms_norm(x, norm)), where lm_head is
// embed_tokens when the embeddings are tied.
//
// LoRA adapters (models/lora/lora_adapter.h) add their low-rank path to
// each adapted projection inside Project(), after the base product
// (models/ops/lora_linear.h); the rows of one call may run with different
// adapters or none (AdapterRows), each row's result being what it gets
// alone with its adapter.
//
// Attention is the one step the callers do their own way (the sampler
// writes k and v into its cache pages first), so the layer takes it as a
// callback; Attend() is the shared call both make.
#ifndef RLRT_MODELS_DECODER_DECODER_LAYER_H_
#define RLRT_MODELS_DECODER_DECODER_LAYER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "base/function_ref.h"
#include "base/status.h"
#include "models/config/model_config.h"
#include "models/decoder/decoder_leaves.h"
#include "models/lora/lora_adapter.h"
#include "models/ops/attention.h"
#include "models/ops/linear.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

// Rows [begin, end) of a call that run with `adapter`.
struct AdapterSegment {
  int64_t begin = 0;
  int64_t end = 0;
  const LoraAdapter* adapter = nullptr;
};

// The adapters of a call's rows: rows in no segment run with the base alone.
// Segments must not overlap; the adapters must be made for this model
// (callers check LoraAdapter::base_shape_fingerprint once per call).
struct AdapterRows {
  std::span<const AdapterSegment> segments;
  // [rows, largest rank] floats, for s * (x A^T).
  float* scratch = nullptr;
};

// Where one layer's forward leaves its activations, row-major with `rows`
// rows each. A caller that needs none of them again (the sampler) may
// alias: q_raw = q and k_raw = k (q/k norm then runs in place), mid = the
// layer's input x (the residual adds in place), normed_mlp = normed_attn,
// act = gate.
struct LayerActivations {
  float* normed_attn = nullptr;  // [rows, hidden] input_layernorm(x)
  float* q_raw = nullptr;        // [rows, q_dim] q_proj(n1), before q_norm
  float* k_raw = nullptr;        // [rows, kv_dim] k_proj(n1), before k_norm
  float* q = nullptr;            // [rows, q_dim] after q_norm and rope
  float* k = nullptr;            // [rows, kv_dim] after k_norm and rope
  float* v = nullptr;            // [rows, kv_dim]
  float* attn = nullptr;         // [rows, q_dim] attention output
  float* mid = nullptr;          // [rows, hidden] x + o_proj(attn)
  float* normed_mlp = nullptr;   // [rows, hidden] post_attention_layernorm
  float* gate = nullptr;         // [rows, intermediate] gate_proj(n2)
  float* up = nullptr;           // [rows, intermediate] up_proj(n2)
  float* act = nullptr;          // [rows, intermediate] silu(gate) * up
  AdapterRows adapters;          // the rows' LoRA adapters, if any
};

// Rotary tables of the rows: [rows, head_dim / 2] each (RopeTables).
struct RotaryRows {
  const float* cos = nullptr;
  const float* sin = nullptr;
};

class DecoderLayers {
 public:
  // `weights` must have the structure `leaves` was resolved on and outlive
  // this object; it is read in place on every call. Work runs on `mesh`
  // (inline when null).
  // `kv_dtype` is the KV cache's element type (F32 or BF16).
  DecoderLayers(const ModelConfig& config, const DecoderLeaves& leaves,
                const ParamLeaves& weights, MatmulKernel kernel, DType kv_dtype,
                Mesh* mesh);

  // x[rows, hidden] = embed_tokens[tokens].
  Status Embed(const int32_t* tokens, int64_t rows, float* x) const;

  // Layer `layer` on x[rows, hidden]. `attend` must fill a.attn from a.q,
  // a.k and a.v. Writes x' into x_out, which may be x itself; with a null
  // x_out it stops after the MLP activation (the trainer's backward
  // recomputes a layer that far and needs no output).
  Status Forward(int64_t layer, const float* x, int64_t rows,
                 const LayerActivations& a, RotaryRows rotary,
                 FunctionRef<Status()> attend, float* x_out) const;

  // a.attn = causal attention of a.q over the keys and values in `kv`
  // (the sampler's pages, or the trainer's contiguous rows).
  // `scratch` holds one score row of `scratch_stride` floats per worker.
  Status Attend(const LayerActivations& a,
                std::span<const AttentionSequence> sequences, PagedKvView kv,
                float* scratch, int64_t scratch_stride) const;

  // logits[rows, vocab] = lm_head(rms_norm(x, norm)) for x[rows, hidden];
  // `normed` receives the normed rows (it may be x).
  Status Head(const float* x, int64_t rows, float* normed, float* logits) const;

  // y (+)= x W^T (+ b) for one of the layer's projections (kQProj ...
  // kDownProj, with its bias when the model has one), plus the low-rank
  // path of each segment's adapter on the segment's rows.
  Status Project(int64_t layer, LayerParam projection, const float* x,
                 int64_t rows, float* y, bool accumulate = false,
                 const AdapterRows& adapters = {}) const;

  const ModelConfig& config() const { return config_; }
  DType kv_dtype() const { return kv_dtype_; }

 private:
  const float* Weight(int64_t layer, LayerParam p) const {
    return leaves_.Get(weights_, layer, p);
  }
  Status Linear(const float* x, int64_t rows, int64_t in, MatrixRef weight,
                const float* bias, int64_t out, float* y,
                bool accumulate) const;

  const ModelConfig& config_;
  const DecoderLeaves& leaves_;
  const ParamLeaves& weights_;
  const MatmulKernel kernel_;
  const DType kv_dtype_;
  Mesh* const mesh_;
  const float eps_;
};

}  // namespace rlrt

#endif  // RLRT_MODELS_DECODER_DECODER_LAYER_H_
