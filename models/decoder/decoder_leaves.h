// The parameter map of a decoder: where each parameter (decoder_params.h)
// sits in a leaf list of the structure LeafSpecsFor(config). The sampler's
// forward, the trainer's forward and backward, and their gradients all read
// parameters through it. Weights and their gradients are two lists of that
// structure, so the same indices address both: resolved once by name at
// creation, never looked up by name per step (no allocation, no hashing).
//
// The matrices of a list may be F32 or BF16 (LeafSpecsFor's matrix_dtype):
// a trainer's BF16 compute copy, its F32 master weights and its F32
// gradients share one map. Matrices are read through Matrix() (either
// dtype); Get() returns floats and so only serves F32 leaves (vectors
// always, matrices of F32 lists).
#ifndef RLRT_MODELS_DECODER_DECODER_LEAVES_H_
#define RLRT_MODELS_DECODER_DECODER_LEAVES_H_

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/config/decoder_params.h"
#include "models/config/model_config.h"
#include "models/ops/matrix_ref.h"
#include "models/param_leaves.h"

namespace rlrt {

class DecoderLeaves {
 public:
  // Fails unless `leaves` has exactly the structure LeafSpecsFor(config,
  // F32 or BF16).
  static StatusOr<DecoderLeaves> Resolve(const ModelConfig& config,
                                         const ParamLeaves& leaves);

  // OK when `other` has the structure these indices were resolved on, with
  // matrices of either dtype; otherwise an error naming `what` and the
  // differences.
  Status CheckStructure(const ParamLeaves& other, std::string_view what) const;
  // The same for gradients, whose matrices may mix dtypes: each F32, or
  // BF16 (a BF16 gradient; vectors stay F32).
  Status CheckGradientStructure(const ParamLeaves& grads,
                                std::string_view what) const;

  // The parameter's floats in a list of this structure, or null when the
  // model has no such parameter or its leaf is not F32. kLmHead is the
  // embedding when tied, so the LM head's gradient adds into embed_tokens.
  const float* Get(const ParamLeaves& leaves, ModelParam p) const;
  float* Get(ParamLeaves& leaves, ModelParam p) const;
  const float* Get(const ParamLeaves& leaves, int64_t layer,
                   LayerParam p) const;
  float* Get(ParamLeaves& leaves, int64_t layer, LayerParam p) const;
  // A matrix's BF16 bit patterns for writing (a BF16 gradient), or null
  // when the model has no such parameter or its leaf is not BF16.
  uint16_t* GetBf16(ParamLeaves& leaves, ModelParam p) const;
  uint16_t* GetBf16(ParamLeaves& leaves, int64_t layer, LayerParam p) const;
  // A matrix parameter as stored, F32 or BF16 (null data when absent).
  MatrixRef Matrix(const ParamLeaves& leaves, ModelParam p) const;
  MatrixRef Matrix(const ParamLeaves& leaves, int64_t layer,
                   LayerParam p) const;

 private:
  DecoderLeaves() = default;
  int64_t Index(ModelParam p) const { return model_[static_cast<int>(p)]; }
  int64_t Index(int64_t layer, LayerParam p) const {
    return layers_[layer][static_cast<int>(p)];
  }

  // LeafSpecsFor(config, F32 / BF16), for diffs.
  std::vector<LeafSpec> specs_f32_;
  std::vector<LeafSpec> specs_bf16_;
  uint64_t fingerprint_f32_ = 0;
  uint64_t fingerprint_bf16_ = 0;
  std::array<int64_t, kNumModelParams> model_{};              // -1: absent
  std::vector<std::array<int64_t, kNumLayerParams>> layers_;  // -1: absent
};

}  // namespace rlrt

#endif  // RLRT_MODELS_DECODER_DECODER_LEAVES_H_
