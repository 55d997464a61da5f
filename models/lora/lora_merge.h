// Folding an adapter into its base: W <- W + s B A for every adapted
// projection (PEFT's merge_and_unload), for exporting a plain Hugging Face
// checkpoint (--merge_lora) and as an independent check of the unmerged
// forward.
#ifndef RLRT_MODELS_LORA_LORA_MERGE_H_
#define RLRT_MODELS_LORA_LORA_MERGE_H_

#include "base/status.h"
#include "models/config/model_config.h"
#include "models/lora/lora_adapter.h"
#include "models/param_leaves.h"

namespace rlrt {

// `base` must have the structure LeafSpecsFor(model) with F32 or BF16
// matrices and be the model `adapter` was made for. Each merged element is
// W + s * sum_k B[o,k] A[k,i], summed in double and rounded once to the
// leaf's dtype. Checks everything before changing anything.
Status MergeLoraInto(const LoraAdapter& adapter, const ModelConfig& model,
                     ParamLeaves& base);

}  // namespace rlrt

#endif  // RLRT_MODELS_LORA_LORA_MERGE_H_
