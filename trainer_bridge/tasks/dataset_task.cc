#include "trainer_bridge/tasks/dataset_task.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>

#include "base/timing.h"
#include "models/tokenizer/chat_template.h"

namespace rlrt {

DatasetTask::DatasetTask(std::vector<TaskExample> examples,
                         const Tokenizer& tokenizer,
                         const DatasetTaskOptions& options,
                         ChatTemplateKind chat_template, RewardScorer scorer)
    : examples_(std::move(examples)),
      tokenizer_(tokenizer),
      options_(options),
      chat_template_(chat_template),
      scorer_(std::move(scorer)) {}

StatusOr<std::unique_ptr<DatasetTask>> DatasetTask::Create(
    std::vector<TaskExample> examples, const Tokenizer& tokenizer,
    const DatasetTaskOptions& options) {
  if (options.max_prompt_length < 1)
    return InvalidArgumentError("max_prompt_length must be >= 1");
  const ChatTemplateKind chat_template =
      ChatTemplateFor(options.model_type, &tokenizer);
  if (chat_template == ChatTemplateKind::kNone) {
    return NoChatTemplateError(options.model_type,
                               tokenizer.chat_template().has_value())
        .WithContext("task prompts");
  }
  ASSIGN_OR_RETURN(RewardScorer scorer, RewardScorer::Create(options.rewards));
  std::unique_ptr<DatasetTask> task(
      new DatasetTask(std::move(examples), tokenizer, options, chat_template,
                      std::move(scorer)));
  std::vector<size_t> order(task->examples_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(options.seed);
  std::shuffle(order.begin(), order.end(), rng);
  ChatTemplateOptions chat;
  chat.enable_thinking = options.enable_thinking;
  for (size_t i : order) {
    const std::vector<ChatMessage> messages =
        TaskMessages(task->examples_[i], options.system_prompt);
    ASSIGN_OR_RETURN(std::string text,
                     ApplyChatTemplate(chat_template, messages, chat));
    // The template writes its own BOS where it has one.
    std::vector<int32_t> ids = tokenizer.Encode(text);
    if (static_cast<int64_t>(ids.size()) > options.max_prompt_length) {
      ++task->skipped_;
      continue;
    }
    task->kept_.push_back(i);
    task->prompt_ids_.push_back(std::move(ids));
  }
  if (task->kept_.empty()) {
    return InvalidArgumentError("no prompt fits max_prompt_length " +
                                std::to_string(options.max_prompt_length) +
                                " tokens (" + std::to_string(task->skipped_) +
                                " longer)");
  }
  return task;
}

int64_t DatasetTask::Position(int64_t index, int64_t prompt,
                              int64_t batch_size) const {
  return (index * batch_size + prompt) % size();
}

StatusOr<std::vector<std::vector<int32_t>>> DatasetTask::Prompts(
    int64_t index, int64_t batch_size) {
  if (index < 0 || batch_size < 1)
    return InvalidArgumentError("bad batch index or size");
  batch_size_ = batch_size;
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t p = 0; p < batch_size; ++p)
    prompts.push_back(prompt_ids_[Position(index, p, batch_size)]);
  return prompts;
}

const TaskExample& DatasetTask::ExampleAt(int64_t index, int64_t prompt,
                                          int64_t batch_size) const {
  return example(Position(index, prompt, batch_size));
}

Reward DatasetTask::Score(int64_t index, int64_t prompt,
                          const SampleOutput& completion) {
  const TaskExample& e = ExampleAt(index, prompt, batch_size_);
  RewardScorer::Scored r =
      scorer_.Score(completion.text,
                    static_cast<int64_t>(completion.token_ids.size()), e.gold);
  return {r.total, std::move(r.parts)};
}

std::vector<SftExample> DatasetTask::SftBatch(int64_t offset,
                                              int64_t count) const {
  const std::optional<int32_t> end_of_turn =
      chat_template_ == ChatTemplateKind::kLlama2
          ? tokenizer_.eos_id()
          : tokenizer_.TokenToId("<|im_end|>");
  std::vector<SftExample> batch;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t at = (offset + i) % size();
    SftExample e;
    e.prompt = prompt_ids_[at];
    const TaskExample& x = example(at);
    const AnswerFormat format = rewards().format;
    const bool worked = !options_.sft_final_answer_only &&
                        (format == AnswerFormat::kPlain ||
                         FinalAnswerOf(x.answer, format).has_value());
    e.tokens =
        tokenizer_.Encode(worked ? x.answer : FormattedAnswer(x.gold, format));
    if (end_of_turn) e.tokens.push_back(*end_of_turn);
    batch.push_back(std::move(e));
  }
  return batch;
}

namespace {

// What one rank's share of an evaluation adds to the whole.
struct EvalCounts {
  int64_t correct = 0;
  int64_t strict_format = 0;
  int64_t tokens = 0;
  uint64_t weight_version = 0;  // The oldest any token came from.
};

// Greedy answers to `indices`.
StatusOr<EvalCounts> EvaluateExamples(RolloutBackend& rollouts,
                                      const DatasetTask& task,
                                      std::span<const int64_t> indices,
                                      int64_t max_new_tokens,
                                      const std::string& lora_name) {
  std::vector<RequestHandle> handles;
  for (int64_t i : indices) {
    GenerateRequest r;
    r.input_ids = task.prompt_ids(i);
    r.sampling.temperature = 0.0f;
    r.stop.max_new_tokens = max_new_tokens;
    r.lora_name = lora_name;
    ASSIGN_OR_RETURN(RequestHandle h, rollouts.Submit(std::move(r)));
    handles.push_back(std::move(h));
  }
  EvalCounts out;
  ASSIGN_OR_RETURN(out.weight_version,
                   lora_name.empty() ? rollouts.WeightVersion()
                                     : rollouts.AdapterVersion(lora_name));
  Status first_error;
  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t i = indices[k];
    StatusOr<GenerateResult> result = handles[k].Wait();
    if (!result.ok()) {
      if (first_error.ok()) first_error = result.status();
      continue;
    }
    const SampleOutput& s = result->samples[0];
    const std::string& gold = task.example(i).gold;
    const AnswerFormat format = task.rewards().format;
    out.correct += CorrectnessReward(s.text, gold, format) == 1.0;
    out.strict_format += StrictFormatReward(s.text, format) == 1.0;
    out.tokens += static_cast<int64_t>(s.token_ids.size());
    for (uint64_t v : s.weight_versions)
      out.weight_version = std::min(out.weight_version, v);
  }
  RETURN_IF_ERROR(first_error);
  return out;
}
}  // namespace

StatusOr<TaskEvalResult> EvaluateTask(RolloutBackend& rollouts,
                                      const DatasetTask& task, int64_t count,
                                      int64_t max_new_tokens,
                                      const std::string& lora_name,
                                      DataParallelGroup* group) {
  if (count < 1) return InvalidArgumentError("eval count must be >= 1");
  const auto start = SteadyClock::now();
  count = std::min(count, task.size());
  const int64_t first = group != nullptr ? group->rank() : 0;
  const int64_t stride = group != nullptr ? group->size() : 1;
  std::vector<int64_t> mine;
  for (int64_t i = first; i < count; i += stride) mine.push_back(i);
  StatusOr<EvalCounts> local =
      EvaluateExamples(rollouts, task, mine, max_new_tokens, lora_name);
  RETURN_IF_ERROR(AgreeOnStatus(group, local.status()));
  double sums[] = {double(local->correct), double(local->strict_format),
                   double(local->tokens)};
  double oldest = double(local->weight_version);
  RETURN_IF_ERROR(ReduceMetrics(group, sums, ReduceOp::kSum));
  RETURN_IF_ERROR(ReduceMetrics(group, {&oldest, 1}, ReduceOp::kMin));
  TaskEvalResult out;
  out.examples = count;
  out.correct = static_cast<int64_t>(sums[0]);
  out.strict_format = static_cast<int64_t>(sums[1]);
  out.accuracy = double(out.correct) / double(count);
  out.mean_completion_tokens = sums[2] / double(count);
  out.weight_version = static_cast<uint64_t>(oldest);
  out.seconds = SecondsSince(start);
  return out;
}

}  // namespace rlrt
