// The GRPO learner's flags, shared by the binaries that train
// (grpo_gsm8k_10steps, grpo_step), so both spell and check them the same.
#ifndef RLRT_EXAMPLES_LEARNER_FLAGS_H_
#define RLRT_EXAMPLES_LEARNER_FLAGS_H_

#include <gflags/gflags.h>

#include "base/status.h"
#include "trainer_bridge/grpo_learner.h"

DECLARE_double(learning_rate);
DECLARE_string(lr_schedule);
DECLARE_int32(warmup_steps);
DECLARE_double(beta);
DECLARE_double(epsilon);
DECLARE_double(epsilon_high);
DECLARE_int32(num_iterations);
DECLARE_bool(scale_rewards);
DECLARE_string(loss_type);
DECLARE_string(importance_sampling_level);
DECLARE_double(dual_clip_c);
DECLARE_string(kl_estimator);
DECLARE_bool(kl_in_reward);
DECLARE_string(advantage_estimator);
DECLARE_double(tis_cap);
DECLARE_bool(drop_truncated);
DECLARE_double(weight_decay);
DECLARE_double(max_grad_norm);
DECLARE_bool(bf16_backward_products);
DECLARE_bool(bf16_gradients);
DECLARE_double(temperature);

namespace rlrt {

// Validates the flags above and fills the options they set. The caller
// sets what depends on its workload: lr.total_steps,
// loss.max_completion_length, max_micro_batch_tokens and sample_vocab.
StatusOr<GrpoOptions> GrpoOptionsFromFlags();

}  // namespace rlrt

#endif  // RLRT_EXAMPLES_LEARNER_FLAGS_H_
