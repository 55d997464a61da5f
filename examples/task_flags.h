// The demo's task flags: which dataset (GSM8K by default, or any JSON-lines
// file), how prompts are asked and answers read, and the built-in rewards'
// weights.
#ifndef RLRT_EXAMPLES_TASK_FLAGS_H_
#define RLRT_EXAMPLES_TASK_FLAGS_H_

#include <gflags/gflags.h>

#include <string>

#include "base/status.h"
#include "trainer_bridge/remote/reward_service.h"
#include "trainer_bridge/tasks/dataset.h"
#include "trainer_bridge/tasks/dataset_task.h"

DECLARE_int32(max_prompt_length);

namespace rlrt {

struct TaskFlags {
  std::string train_file;
  std::string eval_file;  // Empty: no evaluation data.
  DatasetFields fields;
  DatasetTaskOptions options;  // All but model_type, set from the model.
  RewardServiceOptions reward_service;  // url empty: no --reward_url.
  double reward_url_weight = 1.0;
};

// Validates and resolves the task flags (GSM8K in --gsm8k_dir when
// --dataset is empty).
StatusOr<TaskFlags> TaskFromFlags();

}  // namespace rlrt

#endif  // RLRT_EXAMPLES_TASK_FLAGS_H_
