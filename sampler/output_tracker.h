// One sequence's generated output and when it must stop.
//
// Stops, checked after every token, first match wins:
//  - a stop token id (EOS and friends): the token stays in the ids (and its
//    logprob in the results), because an RL policy must learn to emit it,
//    but its text is not appended;
//  - a stop string: matched on the decoded text, also when it spans several
//    tokens; the ids keep the token that completed it, the text is cut
//    before the stop string;
//  - max_new_tokens reached: finish reason "length".
#ifndef RLRT_SAMPLER_OUTPUT_TRACKER_H_
#define RLRT_SAMPLER_OUTPUT_TRACKER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "models/tokenizer/stream_decoder.h"
#include "models/tokenizer/tokenizer.h"

namespace rlrt {

struct StopConditions {
  std::vector<std::string> stop_strings;
  std::vector<int32_t> stop_token_ids;
  int64_t max_new_tokens = 128;
};

// Non-empty stop strings, non-negative ids, max_new_tokens >= 1.
Status ValidateStopConditions(const StopConditions& stop);

enum class FinishReason { kNone, kStop, kLength, kAbort };
std::string_view FinishReasonName(
    FinishReason reason);  // "", "stop", "length", "abort"

class OutputTracker {
 public:
  // `tokenizer` may be null: then there is no text and stop strings never
  // match (ValidateStopConditions callers should refuse them).
  OutputTracker(const Tokenizer* tokenizer, StopConditions stop);

  // Records a generated id; returns why the sequence is finished now, or
  // kNone to go on. Appending after a finish is an error, as is an id the
  // tokenizer does not know.
  StatusOr<FinishReason> Append(int32_t id);

  const std::vector<int32_t>& ids() const { return ids_; }
  const std::string& text() const { return text_; }
  FinishReason finish_reason() const { return finish_; }
  // The stop string or id that ended the sequence, if any.
  const std::optional<std::string>& matched_stop_string() const {
    return matched_string_;
  }
  std::optional<int32_t> matched_stop_token() const { return matched_token_; }

 private:
  bool IsStopToken(int32_t id) const;

  const Tokenizer* tokenizer_;
  StopConditions stop_;
  std::optional<StreamDecoder> decoder_;
  size_t longest_stop_ = 0;
  std::vector<int32_t> ids_;
  std::string text_;
  FinishReason finish_ = FinishReason::kNone;
  std::optional<std::string> matched_string_;
  std::optional<int32_t> matched_token_;
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_OUTPUT_TRACKER_H_
