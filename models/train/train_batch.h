// A training batch: whole token sequences (each from position 0) and, per
// sequence, the positions whose next token is scored. FlatBatch validates a
// batch and lays it out as rows, in buffers sized once.
#ifndef RLRT_MODELS_TRAIN_TRAIN_BATCH_H_
#define RLRT_MODELS_TRAIN_TRAIN_BATCH_H_

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "models/ops/attention.h"

namespace rlrt {

struct TrainSequence {
  std::span<const int32_t> tokens;
  // Target positions t, strictly increasing, each below tokens.size() - 1:
  // the model is scored on tokens[t + 1] given tokens[0 .. t]. For a
  // prompt of length P and a completion after it, P - 1 .. size - 2.
  std::span<const int32_t> targets;
};

// The number of targets of the whole batch.
int64_t NumTargets(std::span<const TrainSequence> batch);

// Limits a batch must respect.
struct BatchLimits {
  int64_t vocab_size = 0;
  int64_t max_tokens = 0;           // All sequences together.
  int64_t max_sequence_length = 0;  // The rotary tables' range.
};

class FlatBatch {
 public:
  // Capacity for `max_tokens` rows, allocated here once.
  explicit FlatBatch(int64_t max_tokens);

  // Checks the whole batch (token ids, lengths, target positions), then
  // lays it out: sequence after sequence, empty ones skipped. On error the
  // batch is left empty.
  Status Assign(std::span<const TrainSequence> batch,
                const BatchLimits& limits);

  int64_t rows() const { return rows_; }
  int64_t num_targets() const {
    return static_cast<int64_t>(target_rows_.size());
  }
  int64_t longest_sequence() const { return longest_; }
  // Per row: its token and its position within its sequence.
  const int32_t* tokens() const { return tokens_.data(); }
  const int32_t* positions() const { return positions_.data(); }
  // The sequences for attention, with contiguous page tables (page = row).
  std::span<const AttentionSequence> sequences() const { return sequences_; }
  // Per target, in batch order: its row and the token it scores.
  std::span<const int64_t> target_rows() const { return target_rows_; }
  std::span<const int32_t> target_tokens() const { return target_tokens_; }

 private:
  Status Validate(std::span<const TrainSequence> batch,
                  const BatchLimits& limits) const;

  int64_t rows_ = 0;
  int64_t longest_ = 0;
  std::vector<int32_t> pages_;  // 0, 1, 2, ...: page id = row.
  std::vector<int32_t> tokens_;
  std::vector<int32_t> positions_;
  std::vector<AttentionSequence> sequences_;
  std::vector<int64_t> target_rows_;
  std::vector<int32_t> target_tokens_;
};

}  // namespace rlrt

#endif  // RLRT_MODELS_TRAIN_TRAIN_BATCH_H_
