#include "examples/task_flags.h"

#include <gflags/gflags.h>

#include <cmath>

DEFINE_string(gsm8k_dir, RLRT_SHARED_DIR "/data/gsm8k",
              "GSM8K's train.jsonl and test.jsonl: the task when --dataset "
              "is empty.");
DEFINE_string(dataset, "",
              "Train on this JSON-lines file instead of GSM8K: one object "
              "per line with --prompt_field and --answer_field.");
DEFINE_string(eval_dataset, "",
              "Evaluate on this JSON-lines file (with --dataset; GSM8K's "
              "test.jsonl otherwise).");
DEFINE_string(prompt_field, "question", "The prompt's field (--dataset).");
DEFINE_string(answer_field, "answer",
              "The reference answer's field, a string or a number "
              "(--dataset); empty: the dataset has no answers.");
DEFINE_string(answer_format, "hashes",
              "Where completions give their final answer: hashes (a last "
              "line '#### <number>'), boxed (\\boxed{...}) or plain (the "
              "whole completion).");
DEFINE_string(system_prompt, "",
              "The system turn before every prompt; unset: one asking for "
              "--answer_format (none for plain); set empty for none.");
DEFINE_int32(max_prompt_length, 256,
             "Prompts longer than this (in tokens) are skipped.");
DEFINE_bool(enable_thinking, false,
            "Qwen3 chat template: leave the thinking phase on.");
DEFINE_string(sft_target, "worked",
              "SFT targets: worked (the dataset's reference answers) or "
              "final_answer (only the formatted final answer, e.g. "
              "'#### 42').");
// Rewards.
DEFINE_double(reward_strict_format, 0.25,
              "Weight: the completion ends with its answer in the format.");
DEFINE_double(reward_lenient_format, 0.25,
              "Weight: the format's marker with an answer anywhere.");
DEFINE_double(reward_correctness, 2.0, "Weight: exact answer.");
DEFINE_double(reward_close_answer, 0.5, "Weight: numerically close answer.");
DEFINE_double(reward_regex, 0,
              "Weight: the completion matches --reward_regex_pattern.");
DEFINE_string(reward_regex_pattern, "", "ECMAScript regex (--reward_regex).");
DEFINE_double(reward_length, 0,
              "Weight of the length penalty: 0 up to --length_target "
              "tokens, falling linearly to -1 at twice that.");
DEFINE_int32(length_target, 0, "Tokens free of the length penalty.");
// An external reward.
DEFINE_string(reward_url, "",
              "POST each prompt's completions as JSON to this URL and add "
              "the rewards it returns (see examples/reward_server.py).");
DEFINE_double(reward_url_weight, 1.0, "Weight of --reward_url's rewards.");
DEFINE_double(reward_timeout_s, 30, "--reward_url: seconds per attempt.");
DEFINE_int32(reward_retries, 2,
             "--reward_url: attempts after a failed one (transport errors, "
             "timeouts, HTTP 5xx).");
DECLARE_uint64(seed);

namespace rlrt {

StatusOr<TaskFlags> TaskFromFlags() {
  TaskFlags t;
  ASSIGN_OR_RETURN(t.fields.format, ParseAnswerFormat(FLAGS_answer_format));
  t.fields.prompt_field = FLAGS_prompt_field;
  t.fields.answer_field = FLAGS_answer_field;
  if (FLAGS_dataset.empty()) {
    if (t.fields.prompt_field != "question" ||
        t.fields.answer_field != "answer" ||
        t.fields.format != AnswerFormat::kHashes || !FLAGS_eval_dataset.empty())
      return InvalidArgumentError(
          "--prompt_field, --answer_field, --answer_format and "
          "--eval_dataset go with --dataset (GSM8K's are fixed)");
    t.train_file = FLAGS_gsm8k_dir + "/train.jsonl";
    t.eval_file = FLAGS_gsm8k_dir + "/test.jsonl";
    t.fields.require_formatted_answer = true;
  } else {
    t.train_file = FLAGS_dataset;
    t.eval_file = FLAGS_eval_dataset;
    if (!t.eval_file.empty() && t.fields.answer_field.empty())
      return InvalidArgumentError(
          "--eval_dataset needs answers: --answer_field is empty");
  }
  if (FLAGS_sft_target != "worked" && FLAGS_sft_target != "final_answer")
    return InvalidArgumentError("--sft_target must be worked or final_answer");
  if (FLAGS_max_prompt_length < 1)
    return InvalidArgumentError("--max_prompt_length must be >= 1");
  if (FLAGS_length_target < 0)
    return InvalidArgumentError("--length_target must be >= 0");

  DatasetTaskOptions& o = t.options;
  o.max_prompt_length = FLAGS_max_prompt_length;
  o.system_prompt =
      gflags::GetCommandLineFlagInfoOrDie("system_prompt").is_default
          ? DefaultSystemPrompt(t.fields.format)
          : FLAGS_system_prompt;
  o.rewards.format = t.fields.format;
  o.rewards.strict_format = FLAGS_reward_strict_format;
  o.rewards.lenient_format = FLAGS_reward_lenient_format;
  o.rewards.correctness = FLAGS_reward_correctness;
  o.rewards.close_answer = FLAGS_reward_close_answer;
  o.rewards.regex = FLAGS_reward_regex;
  o.rewards.regex_pattern = FLAGS_reward_regex_pattern;
  o.rewards.length = FLAGS_reward_length;
  o.rewards.length_target = FLAGS_length_target;
  // Checked here too, so a bad pattern fails before anything heavy starts.
  RETURN_IF_ERROR(RewardScorer::Create(o.rewards));
  o.seed = FLAGS_seed;
  o.enable_thinking = FLAGS_enable_thinking;
  o.sft_final_answer_only = FLAGS_sft_target == "final_answer";
  if (!FLAGS_reward_url.empty()) {
    t.reward_service.url = FLAGS_reward_url;
    t.reward_service.timeout_seconds = FLAGS_reward_timeout_s;
    t.reward_service.retries = FLAGS_reward_retries;
    if (!std::isfinite(FLAGS_reward_url_weight))
      return InvalidArgumentError("--reward_url_weight must be finite");
    t.reward_url_weight = FLAGS_reward_url_weight;
    // A malformed URL fails now, not after the model is built.
    RETURN_IF_ERROR(RewardService::Create(t.reward_service));
  }
  return t;
}

}  // namespace rlrt
