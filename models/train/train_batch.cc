#include "models/train/train_batch.h"

#include <string>

namespace rlrt {
namespace {

Status CheckSequence(const TrainSequence& s, size_t index,
                     const BatchLimits& limits) {
  const std::string where = "sequence " + std::to_string(index);
  const int64_t n = static_cast<int64_t>(s.tokens.size());
  if (n > limits.max_sequence_length) {
    return InvalidArgumentError(
        where + ": " + std::to_string(n) + " tokens exceed the model's " +
        std::to_string(limits.max_sequence_length) + " positions");
  }
  for (int32_t token : s.tokens) {
    if (token < 0 || token >= limits.vocab_size) {
      return InvalidArgumentError(
          where + ": token id " + std::to_string(token) +
          " outside the vocabulary of " + std::to_string(limits.vocab_size));
    }
  }
  int64_t previous = -1;
  for (int32_t t : s.targets) {
    if (t <= previous || t >= n - 1) {
      return InvalidArgumentError(
          where + ": target position " + std::to_string(t) +
          " is not increasing or has no next token (length " +
          std::to_string(n) + ")");
    }
    previous = t;
  }
  return OkStatus();
}

}  // namespace

int64_t NumTargets(std::span<const TrainSequence> batch) {
  int64_t n = 0;
  for (const TrainSequence& s : batch) n += s.targets.size();
  return n;
}

FlatBatch::FlatBatch(int64_t max_tokens)
    : pages_(max_tokens), tokens_(max_tokens), positions_(max_tokens) {
  ContiguousPages(pages_.data(), max_tokens);
  sequences_.reserve(max_tokens);
  target_rows_.reserve(max_tokens);
  target_tokens_.reserve(max_tokens);
}

Status FlatBatch::Validate(std::span<const TrainSequence> batch,
                           const BatchLimits& limits) const {
  int64_t total = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    RETURN_IF_ERROR(CheckSequence(batch[i], i, limits));
    total += batch[i].tokens.size();
  }
  if (total > limits.max_tokens) {
    return InvalidArgumentError("batch of " + std::to_string(total) +
                                " tokens exceeds max_tokens " +
                                std::to_string(limits.max_tokens));
  }
  return OkStatus();
}

Status FlatBatch::Assign(std::span<const TrainSequence> batch,
                         const BatchLimits& limits) {
  rows_ = 0;
  longest_ = 0;
  sequences_.clear();
  target_rows_.clear();
  target_tokens_.clear();
  RETURN_IF_ERROR(Validate(batch, limits));
  for (const TrainSequence& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    if (n == 0) continue;
    sequences_.push_back(AttentionSequence{rows_, n, 0, pages_.data() + rows_});
    for (int64_t i = 0; i < n; ++i) {
      tokens_[rows_ + i] = s.tokens[i];
      positions_[rows_ + i] = static_cast<int32_t>(i);
    }
    for (int32_t t : s.targets) {
      target_rows_.push_back(rows_ + t);
      target_tokens_.push_back(s.tokens[t + 1]);
    }
    rows_ += n;
    longest_ = std::max(longest_, n);
  }
  return OkStatus();
}

}  // namespace rlrt
