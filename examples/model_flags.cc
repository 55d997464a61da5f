#include "examples/model_flags.h"

DEFINE_string(dtype, "auto",
              "Weight matrices: auto (the config's torch_dtype: bfloat16 for "
              "Qwen3 checkpoints and the real-shape presets, float32 for "
              "qwen3-tiny), bfloat16 or float32. BF16 computes with float32 "
              "accumulation; norms, rotary, softmax, attention and logits "
              "stay float32. A trainer in bfloat16 keeps float32 master "
              "weights and sends the sampler its BF16 copy.");
