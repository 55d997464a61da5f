// Flags shared by every binary that builds a model.
#ifndef RLRT_EXAMPLES_MODEL_FLAGS_H_
#define RLRT_EXAMPLES_MODEL_FLAGS_H_

#include <gflags/gflags.h>

// --dtype: the weight matrices' dtype, auto|bfloat16|float32 (ModelSource).
DECLARE_string(dtype);
// --kv_cache_dtype: the sampler's KV cache, auto|bfloat16|float32.
DECLARE_string(kv_cache_dtype);

#endif  // RLRT_EXAMPLES_MODEL_FLAGS_H_
