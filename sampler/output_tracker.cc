#include "sampler/output_tracker.h"

#include <algorithm>

namespace rlrt {

Status ValidateStopConditions(const StopConditions& stop) {
  if (stop.max_new_tokens < 1)
    return InvalidArgumentError("max_new_tokens must be >= 1");
  for (const std::string& s : stop.stop_strings) {
    if (s.empty())
      return InvalidArgumentError("stop strings must not be empty");
  }
  for (int32_t id : stop.stop_token_ids) {
    if (id < 0) return InvalidArgumentError("stop token ids must be >= 0");
  }
  return OkStatus();
}

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
  }
  return "";
}

OutputTracker::OutputTracker(const Tokenizer* tokenizer, StopConditions stop)
    : tokenizer_(tokenizer), stop_(std::move(stop)) {
  if (tokenizer_ != nullptr) decoder_.emplace(*tokenizer_);
  for (const std::string& s : stop_.stop_strings)
    longest_stop_ = std::max(longest_stop_, s.size());
  ids_.reserve(static_cast<size_t>(std::max<int64_t>(stop_.max_new_tokens, 0)));
}

bool OutputTracker::IsStopToken(int32_t id) const {
  return std::find(stop_.stop_token_ids.begin(), stop_.stop_token_ids.end(),
                   id) != stop_.stop_token_ids.end();
}

StatusOr<FinishReason> OutputTracker::Append(int32_t id) {
  if (finish_ != FinishReason::kNone) {
    return FailedPreconditionError("sequence already finished");
  }
  const bool stop_token = IsStopToken(id);
  std::string piece;
  if (decoder_ && !stop_token) {
    ASSIGN_OR_RETURN(piece, decoder_->Next(id));
  }
  ids_.push_back(id);
  if (stop_token) {
    finish_ = FinishReason::kStop;
    matched_token_ = id;
    return finish_;
  }
  // A stop string can only end inside the new piece, so the search starts
  // just early enough to catch one that began in earlier text.
  const size_t old_size = text_.size();
  text_ += piece;
  if (!piece.empty() && longest_stop_ > 0) {
    const size_t from =
        old_size >= longest_stop_ - 1 ? old_size - (longest_stop_ - 1) : 0;
    size_t best = std::string::npos;
    for (const std::string& s : stop_.stop_strings) {
      const size_t at = text_.find(s, from);
      if (at < best) {
        best = at;
        matched_string_ = s;
      }
    }
    if (best != std::string::npos) {
      text_.resize(best);
      finish_ = FinishReason::kStop;
      return finish_;
    }
  }
  if (static_cast<int64_t>(ids_.size()) >= stop_.max_new_tokens) {
    finish_ = FinishReason::kLength;
    if (decoder_) text_ += decoder_->Flush();
  }
  return finish_;
}

}  // namespace rlrt
