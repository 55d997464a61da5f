#include "examples/learner_flags.h"

#include <string>

DEFINE_double(learning_rate, 1e-6, "Peak learning rate.");
DEFINE_string(lr_schedule, "constant", "constant | warmup_cosine");
DEFINE_int32(warmup_steps, 0, "Linear warm-up steps (warmup_cosine).");
DEFINE_double(beta, 0.04, "KL coefficient; 0 skips the reference model.");
DEFINE_double(epsilon, 0.2, "Clip range of the importance ratio.");
DEFINE_double(epsilon_high, 0.0, "Upper clip (DAPO); 0: --epsilon.");
DEFINE_int32(num_iterations, 1, "Optimizer steps per rollout batch (mu).");
DEFINE_bool(scale_rewards, true,
            "Divide advantages by the group std (false: Dr. GRPO).");
DEFINE_string(loss_aggregation, "sequence_mean",
              "sequence_mean (GRPO) | token_mean (DAPO) | constant (Dr. "
              "GRPO)");
DEFINE_bool(drop_truncated, false, "No loss on truncated completions.");
DEFINE_double(weight_decay, 0.0, "AdamW decoupled weight decay.");
DEFINE_double(max_grad_norm, 1.0, "Global gradient-norm clip; 0: off.");
DEFINE_double(temperature, 1.0,
              "The sampling temperature (> 0); logprobs are of the tempered "
              "distribution.");

namespace rlrt {

StatusOr<GrpoOptions> GrpoOptionsFromFlags() {
  if (!(FLAGS_temperature > 0))
    return InvalidArgumentError("--temperature must be > 0 for GRPO");
  if (!(FLAGS_learning_rate >= 0) || !(FLAGS_beta >= 0) ||
      !(FLAGS_epsilon_high >= 0) || !(FLAGS_max_grad_norm >= 0) ||
      !(FLAGS_weight_decay >= 0) || FLAGS_warmup_steps < 0)
    return InvalidArgumentError(
        "--learning_rate, --beta, --epsilon_high, --max_grad_norm, "
        "--weight_decay and --warmup_steps must be >= 0");
  if (!(FLAGS_epsilon > 0))
    return InvalidArgumentError("--epsilon must be > 0");
  if (FLAGS_num_iterations < 1)
    return InvalidArgumentError("--num_iterations must be >= 1");
  GrpoOptions g;
  g.loss.epsilon = FLAGS_epsilon;
  if (FLAGS_epsilon_high > 0) g.loss.epsilon_high = FLAGS_epsilon_high;
  g.loss.beta = FLAGS_beta;
  StatusOr<LossAggregation> aggregation =
      ParseLossAggregation(FLAGS_loss_aggregation);
  if (!aggregation.ok())
    return aggregation.status().WithContext("--loss_aggregation");
  g.loss.aggregation = *aggregation;
  g.loss.drop_truncated = FLAGS_drop_truncated;
  g.scale_rewards = FLAGS_scale_rewards;
  g.temperature = static_cast<float>(FLAGS_temperature);
  g.num_iterations = FLAGS_num_iterations;
  g.adamw.weight_decay = FLAGS_weight_decay;
  g.adamw.max_grad_norm = FLAGS_max_grad_norm;
  StatusOr<LrSchedule::Kind> kind = ParseLrScheduleKind(FLAGS_lr_schedule);
  if (!kind.ok()) return kind.status().WithContext("--lr_schedule");
  g.lr.kind = *kind;
  g.lr.peak = FLAGS_learning_rate;
  g.lr.warmup_steps = FLAGS_warmup_steps;
  return g;
}

}  // namespace rlrt
