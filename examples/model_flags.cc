#include "examples/model_flags.h"

DEFINE_string(dtype, "auto",
              "Weight matrices: auto (the config's torch_dtype: bfloat16 for "
              "Qwen3 checkpoints and the real-shape presets, float32 for "
              "qwen3-tiny), bfloat16 or float32. BF16 computes with float32 "
              "accumulation; norms, rotary, softmax, attention and logits "
              "stay float32. A trainer in bfloat16 keeps float32 master "
              "weights and sends the sampler its BF16 copy.");
DEFINE_string(kv_cache_dtype, "auto",
              "The sampler's KV cache: auto (the weights' dtype), bfloat16 "
              "(half the bytes per token) or float32. The trainer rounds its "
              "keys and values the same way, so logprobs still agree.");
