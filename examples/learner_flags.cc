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
            "--advantage_estimator=grpo: divide advantages by the group std "
            "(false: Dr. GRPO).");
DEFINE_string(loss_type, "grpo",
              "How token losses add up (TRL's names): grpo (mean per "
              "completion, then over completions) | bnpo (token mean over "
              "this process's batch) | dr_grpo (token sum / (completions x "
              "max completion length)) | dapo (token mean over the global "
              "batch).");
DEFINE_string(importance_sampling_level, "token",
              "token | sequence (GSPO: one ratio per completion, the "
              "exponential of its mean token log-ratio, clipped per "
              "completion).");
DEFINE_double(dual_clip_c, 0,
              "Dual-clip PPO: for negative advantages the loss is bounded "
              "by -c * A (c > 1); 0: off.");
DEFINE_string(kl_estimator, "k3",
              "KL to the reference per token: k1 (logp - ref) | k2 ((logp - "
              "ref)^2 / 2) | k3 (exp(ref - logp) - (ref - logp) - 1).");
DEFINE_bool(kl_in_reward, false,
            "Subtract --beta x the completion's KL (the estimator's, between "
            "the sampler's and the reference's logprobs) from its reward "
            "before the advantage, instead of a KL term in the loss.");
DEFINE_double(tis_cap, 0,
              "Truncated importance sampling for stale rollouts "
              "(--max_staleness >= 1): the ratio is taken against the "
              "trainer's logprobs at the step's start, and each token's term "
              "is weighted by min(trainer / sampler probability, cap); 0: "
              "off.");
DEFINE_string(advantage_estimator, "grpo",
              "grpo (group mean and std) | rloo (leave-one-out baseline) | "
              "reinforce_pp (group mean, then normalised over the batch: "
              "REINFORCE++).");
DEFINE_bool(drop_truncated, false, "No loss on truncated completions.");
DEFINE_double(weight_decay, 0.0, "AdamW decoupled weight decay.");
DEFINE_double(max_grad_norm, 1.0, "Global gradient-norm clip; 0: off.");
DEFINE_bool(bf16_backward_products, true,
            "With BF16 weights, run the backward's matrix products in BF16 "
            "with float32 accumulation (each layer's output gradient "
            "rounded to BF16, as PyTorch's autocast does); false: float32 "
            "products, slower.");
DEFINE_bool(bf16_gradients, true,
            "With BF16 weights, keep the gradients of BF16 matrices in BF16 "
            "(half the memory; each micro-batch's float32 gradient is "
            "rounded once as it is added); false: float32 gradients. The "
            "master weights and AdamW moments are float32 either way.");
DEFINE_double(temperature, 1.0,
              "The sampling temperature (> 0); logprobs are of the tempered "
              "distribution.");

namespace rlrt {
namespace {

// parse(value), its error naming the flag.
template <typename Parse>
auto ParseFlag(Parse parse, const std::string& value, const char* flag)
    -> decltype(parse(value)) {
  auto parsed = parse(value);
  if (!parsed.ok()) return parsed.status().WithContext(flag);
  return parsed;
}

}  // namespace

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
  ASSIGN_OR_RETURN(g.loss.loss_type,
                   ParseFlag(ParseLossType, FLAGS_loss_type, "--loss_type"));
  ASSIGN_OR_RETURN(
      g.loss.importance_sampling_level,
      ParseFlag(ParseImportanceSamplingLevel, FLAGS_importance_sampling_level,
                "--importance_sampling_level"));
  if (FLAGS_dual_clip_c != 0 && !(FLAGS_dual_clip_c > 1))
    return InvalidArgumentError("--dual_clip_c must be > 1 (or 0: off)");
  g.loss.dual_clip_c = FLAGS_dual_clip_c;
  ASSIGN_OR_RETURN(
      g.loss.kl_estimator,
      ParseFlag(ParseKlEstimator, FLAGS_kl_estimator, "--kl_estimator"));
  g.kl_in_reward = FLAGS_kl_in_reward;
  if (!(FLAGS_tis_cap >= 0))
    return InvalidArgumentError("--tis_cap must be >= 0 (0: off)");
  g.tis_cap = FLAGS_tis_cap;
  ASSIGN_OR_RETURN(g.advantage_estimator,
                   ParseFlag(ParseAdvantageEstimator, FLAGS_advantage_estimator,
                             "--advantage_estimator"));
  g.loss.drop_truncated = FLAGS_drop_truncated;
  g.scale_rewards = FLAGS_scale_rewards;
  g.temperature = static_cast<float>(FLAGS_temperature);
  g.num_iterations = FLAGS_num_iterations;
  g.bf16_backward_products = FLAGS_bf16_backward_products;
  g.bf16_gradients = FLAGS_bf16_gradients;
  g.adamw.weight_decay = FLAGS_weight_decay;
  g.adamw.max_grad_norm = FLAGS_max_grad_norm;
  ASSIGN_OR_RETURN(g.lr.kind, ParseFlag(ParseLrScheduleKind, FLAGS_lr_schedule,
                                        "--lr_schedule"));
  g.lr.peak = FLAGS_learning_rate;
  g.lr.warmup_steps = FLAGS_warmup_steps;
  return g;
}

}  // namespace rlrt
