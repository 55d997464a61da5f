// A dataset of prompts as an RL task (GSM8K is the default preset): prompts
// rendered through the chat template and tokenized once, visited in a
// seeded shuffled order, and completions scored by the weighted built-in
// rewards (rewards.h). Also the supervised examples (the dataset's
// worked answers) for warm-starting, and greedy evaluation.
#ifndef RLRT_TRAINER_BRIDGE_TASKS_GSM8K_TASK_H_
#define RLRT_TRAINER_BRIDGE_TASKS_GSM8K_TASK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "models/tokenizer/chat_template.h"
#include "models/tokenizer/tokenizer.h"
#include "sampler/engine.h"
#include "trainer_bridge/data_parallel.h"
#include "trainer_bridge/grpo_learner.h"
#include "trainer_bridge/rl_task.h"
#include "trainer_bridge/rollout_backend.h"
#include "trainer_bridge/tasks/dataset.h"
#include "trainer_bridge/tasks/rewards.h"

namespace rlrt {

struct DatasetTaskOptions {
  // Prompts whose rendered form is longer are left out.
  int64_t max_prompt_length = 512;
  // The system turn before every prompt (empty: none). GSM8K's asks for a
  // last line "#### <number>".
  std::string system_prompt = DefaultSystemPrompt(AnswerFormat::kHashes);
  RewardOptions rewards;  // Also the answer format evaluation reads.
  uint64_t seed = 0;      // The visiting order.
  // false renders Qwen3's empty think block (answer without a thinking
  // phase), which keeps completions short. Other templates ignore it.
  bool enable_thinking = false;
  // The policy's config.json model_type ("qwen3", "qwen2", "llama"; e.g.
  // ModelTypeName(config.model_type)): with the tokenizer it picks the chat
  // template, as the engine does (ChatTemplateFor).
  std::string model_type = "qwen3";
  // SFT targets: the dataset's reference answer (when it holds its final
  // answer in the format; else the formatted final answer alone), or only
  // the formatted final answer ("#### 42"): short, so a small model learns
  // the answer format in a few steps.
  bool sft_final_answer_only = false;
};

class DatasetTask : public RlTask {
 public:
  // InvalidArgument when the model has no chat template known to this
  // runtime, or no example fits max_prompt_length.
  static StatusOr<std::unique_ptr<DatasetTask>> Create(
      std::vector<TaskExample> examples, const Tokenizer& tokenizer,
      const DatasetTaskOptions& options);

  StatusOr<std::vector<std::vector<int32_t>>> Prompts(
      int64_t index, int64_t batch_size) override;
  Reward Score(int64_t index, int64_t prompt,
               const SampleOutput& completion) override;

  // The example behind prompt `prompt` of batch `index`.
  const TaskExample& ExampleAt(int64_t index, int64_t prompt,
                               int64_t batch_size) const;
  // `count` supervised examples starting at position `offset` of the
  // visiting order: the prompt and the dataset's worked answer followed by
  // the end-of-turn token ("<|im_end|>" for Qwen, EOS for Llama 2).
  std::vector<SftExample> SftBatch(int64_t offset, int64_t count) const;

  const RewardOptions& rewards() const { return scorer_.options(); }
  int64_t size() const { return static_cast<int64_t>(kept_.size()); }
  int64_t skipped() const { return skipped_; }
  const std::vector<int32_t>& prompt_ids(int64_t i) const {
    return prompt_ids_[i];
  }
  const TaskExample& example(int64_t i) const { return examples_[kept_[i]]; }
  ChatTemplateKind chat_template() const { return chat_template_; }

 private:
  DatasetTask(std::vector<TaskExample> examples, const Tokenizer& tokenizer,
              const DatasetTaskOptions& options, ChatTemplateKind chat_template,
              RewardScorer scorer);
  int64_t Position(int64_t index, int64_t prompt, int64_t batch_size) const;

  std::vector<TaskExample> examples_;
  const Tokenizer& tokenizer_;
  const DatasetTaskOptions options_;
  const ChatTemplateKind chat_template_;
  const RewardScorer scorer_;
  std::vector<size_t> kept_;  // Indices into examples_, shuffled.
  std::vector<std::vector<int32_t>> prompt_ids_;  // Parallel to kept_.
  int64_t skipped_ = 0;
  int64_t batch_size_ = 0;  // Of the last Prompts call, for Score.
};

struct TaskEvalResult {
  int64_t examples = 0;
  int64_t correct = 0;
  int64_t strict_format = 0;
  double accuracy = 0;
  double mean_completion_tokens = 0;
  uint64_t weight_version = 0;  // Oldest version any token came from.
  double seconds = 0;
};

// Greedy decoding of the first `count` examples of `task` (all at once, so
// the engine batches them), scored for exact answers; with `lora_name`,
// under that adapter of the samplers. With a data-parallel `group`, rank r
// decodes examples r, r + size, ... on its own samplers and the result is
// the whole evaluation's, on every rank.
StatusOr<TaskEvalResult> EvaluateTask(RolloutBackend& rollouts,
                                      const DatasetTask& task, int64_t count,
                                      int64_t max_new_tokens,
                                      const std::string& lora_name = "",
                                      DataParallelGroup* group = nullptr);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_TASKS_GSM8K_TASK_H_
