// The post-processor stage of a Hugging Face tokenizer.json, reduced to what
// it does to one sequence: ids put before and after it when the caller asks
// for special tokens (Llama's BOS).
//
// Supported types: TemplateProcessing (its "single" template), ByteLevel (no
// ids; it only adjusts offsets), and Sequence of these. Anything else is
// refused at load time.
#ifndef RLRT_MODELS_TOKENIZER_POST_PROCESSOR_H_
#define RLRT_MODELS_TOKENIZER_POST_PROCESSOR_H_

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "models/tokenizer/json_util.h"

namespace rlrt::tokenizer_internal {

struct PostProcessor {
  // From the "post_processor" member of tokenizer.json (null: nothing).
  // The ids are not checked against the vocabulary here.
  static StatusOr<PostProcessor> FromJson(const Json& json);

  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
};

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_POST_PROCESSOR_H_
