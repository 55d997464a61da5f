// The GRPO learner on the actor mesh: owns the policy's weights, gradients
// and optimizer state, and a frozen reference model when beta > 0 (on the
// reference mesh when there is one).
//
// Precision follows the initial weights. With F32 matrices everything is
// float32. With BF16 matrices the learner trains in mixed precision: float32
// master weights, gradients and AdamW moments, and a BF16 compute copy that
// the forward and backward passes read, the master rounded to nearest at
// every optimizer step. A BF16 master is kept split (split_master.h): the
// copy is its high halves, so it costs no memory of its own and ties
// round away from zero. weights() is that copy: the exact
// bytes to send to the sampler, so both sides compute with the same
// weights and their logprobs agree bit for bit. The reference model keeps
// the initial weights in their own dtype. One Step takes a batch of sampled
// completions (groups of G consecutive completions of one prompt), their
// rewards and the behaviour logprobs the sampler reported, and runs
// num_iterations optimizer steps on it.
//
// With GrpoOptions::lora the learner trains a LoRA adapter instead
// (models/lora): the base is `initial` itself, read in place and never
// written (no copy, no gradient, no optimizer state), the adapter starts as
// PEFT starts it (B = 0, so step 0 is the base exactly), gradients and AdamW
// moments exist for the adapter's leaves alone, and the KL reference is the
// base with the adapter off, so beta > 0 costs no second copy of the
// weights. weights() is then the adapter: what the sampler must receive.
#ifndef RLRT_TRAINER_BRIDGE_GRPO_LEARNER_H_
#define RLRT_TRAINER_BRIDGE_GRPO_LEARNER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "base/function_ref.h"
#include "base/status.h"
#include "models/config/model_config.h"
#include "models/lora/lora_adapter.h"
#include "models/param_leaves.h"
#include "models/train/trainable_transformer.h"
#include "partition/mesh.h"
#include "trainer_bridge/data_parallel.h"
#include "trainer_bridge/grpo_loss.h"
#include "trainer_bridge/optimizer.h"

namespace rlrt {

struct GrpoOptions {
  GrpoLossOptions loss;
  AdvantageEstimator advantage_estimator = AdvantageEstimator::kGrpo;
  bool scale_rewards = true;  // grpo: false is Dr. GRPO (no division by std).
  // The KL to the reference (loss.beta, loss.kl_estimator) as a penalty on
  // each completion's reward before its advantage, instead of a loss term.
  bool kl_in_reward = false;
  // Truncated importance sampling for stale rollouts: when > 0, the ratio
  // is taken against the trainer's own logprobs at the step's start (not
  // the sampler's), and each token's surrogate is weighted by
  // min(exp(trainer - sampler), tis_cap), correcting for the policy that
  // actually sampled. 0: off (the ratio is against the sampler's).
  double tis_cap = 0;
  // The sampler's temperature: logprobs are of the tempered distribution.
  float temperature = 1.0f;
  int num_iterations = 1;  // mu: optimizer steps per rollout batch.
  AdamWOptions adamw;
  LrSchedule lr;
  // Tokens of one micro-batch (prompt + completion, all sequences). Larger
  // batches are split; their gradients accumulate.
  int64_t max_micro_batch_tokens = 4096;
  // Tokens of one micro-batch of the frozen reference's scoring; 0: the
  // same as max_micro_batch_tokens. The reference only scores, so smaller
  // batches cost it little, and its workspace shrinks with them (0.47 GiB
  // for Qwen3-0.6B at the GSM8K demo's whole batch, 0.23 at 1024). Each
  // completion must fit both.
  int64_t reference_micro_batch_tokens = 0;
  // Logprobs over the first sample_vocab ids (0: the whole embedding); set
  // it to the sampler's vocab_size() so both sides normalise over the same
  // ids (see TrainableTransformerOptions::sample_vocab).
  int64_t sample_vocab = 0;
  // The sampler's KV cache dtype (TrainableTransformerOptions::kv_dtype);
  // unset follows the weights, as the sampler's default does.
  std::optional<DType> kv_dtype;
  // With BF16 weights: the backward's products in BF16 (true, faster) or
  // float32 (TrainableTransformerOptions::bf16_backward_products).
  bool bf16_backward_products = true;
  // With BF16 weights: the gradients of the layers' BF16 matrices kept in
  // BF16 (true: 2 bytes per parameter, 0.9 GB less for Qwen3-0.6B, as
  // PyTorch keeps a BF16 parameter's .grad; each micro-batch's float32
  // gradient is rounded once as it is added, TrainableTransformer::
  // Backward) or in float32 (false). The embedding's and LM head's stay
  // float32, as do master weights and AdamW moments.
  bool bf16_gradients = true;
  // Train a LoRA adapter of this shape on a frozen base (see above); unset:
  // full fine-tuning. lora_seed draws the adapter's A.
  std::optional<LoraConfig> lora;
  uint64_t lora_seed = 0;
};

struct Completion {
  std::vector<int32_t> prompt;
  std::vector<int32_t> tokens;  // The completion.
  std::vector<float> behaviour_logprobs;
  double reward = 0;
  bool truncated = false;
};

// A supervised example: train on `tokens` given `prompt`.
struct SftExample {
  std::vector<int32_t> prompt;
  std::vector<int32_t> tokens;
};

struct SftStepMetrics {
  double loss = 0;  // Mean token negative log-likelihood.
  double grad_norm = 0;
  double learning_rate = 0;
  int64_t tokens = 0;
  double seconds = 0;
};

struct GrpoStepMetrics {
  double loss = 0;
  double reward_mean = 0;
  double reward_std = 0;
  double advantage_mean = 0;
  double advantage_std = 0;
  double completion_length_mean = 0;
  int64_t completion_length_max = 0;
  double truncated_fraction = 0;
  double clip_fraction = 0;
  double dual_clip_fraction = 0;  // Of the clipped, by the dual clip.
  // tis_cap > 0: the mean truncated importance weight and the fraction of
  // tokens the cap cut.
  double tis_weight_mean = 0;
  double tis_capped_fraction = 0;
  // The policy's token entropy (nats, of the tempered distribution over the
  // sampled ids) at the step's start, mean over completion tokens.
  double entropy_mean = 0;
  // Mean KL per token to the reference (the estimator's): of the policy in
  // the loss, or of the behaviour policy with kl_in_reward.
  double kl = 0;
  double ratio_mean = 0;
  // Training-inference mismatch over the batch's completion tokens: the
  // sampler's behaviour logprobs against the trainer's, at the weights the
  // trainer holds when the step starts (the first iteration, before any
  // update). With fresh rollouts those are the weights that sampled, and
  // the two sides share every kernel, so the mismatch is exactly 0; with
  // stale rollouts it also holds the policy's lag. The ratios are
  // exp(trainer - behaviour) of the first iteration.
  double logprob_mismatch_max = 0;
  double logprob_mismatch_mean = 0;
  double ratio_min = 0;
  double ratio_max = 0;
  double grad_norm = 0;
  double learning_rate = 0;
  int64_t train_tokens = 0;
  double train_seconds = 0;
  double reference_seconds = 0;
  // Data parallelism: time spent summing gradients over the ranks (part of
  // train_seconds; it includes waiting for the slowest rank).
  double gradient_reduce_seconds = 0;
};

class GrpoLearner {
 public:
  // Copies `initial` into the learner's own weights (and the reference's);
  // with options.lora, `initial` is the frozen base instead, read in place:
  // it must outlive the learner and stay unchanged.
  // `reference_mesh` may be null (the actor mesh then runs the reference).
  static StatusOr<std::unique_ptr<GrpoLearner>> Create(
      const ModelConfig& config, const ParamLeaves& initial, Mesh* actor,
      Mesh* reference_mesh, const GrpoOptions& options);

  // Validates the batch (sizes, token ids, groups), then trains on it
  // (num_iterations optimizer steps). The step is all or nothing: when any
  // iteration fails (a non-finite loss or gradient, or any other error),
  // the weights and the optimizer's state are what they were before the
  // step, even if earlier iterations had already updated them. For that,
  // with num_iterations > 1 the learner keeps a snapshot of the weights and
  // both moments (three more copies of the weights, allocated on first
  // use).
  StatusOr<GrpoStepMetrics> Step(std::span<const Completion> batch,
                                 int64_t group_size);

  // One supervised optimizer step (token cross-entropy over every target
  // token of the batch, micro-batched with accumulation), for warm-starting
  // a policy before RL. Shares the policy, gradients and optimizer with
  // Step. Logprobs are taken at temperature 1. `learning_rate` overrides
  // the schedule's (a warm start usually wants a larger one than RL).
  StatusOr<SftStepMetrics> SftStep(
      std::span<const SftExample> batch,
      std::optional<double> learning_rate = std::nullopt);

  // Resumes a saved run: the policy's float32 master weights (see
  // WithMasterWeights()) and the optimizer's state (the reference stays the
  // initial weights given to Create). Structures must match; nothing
  // changes on error.
  Status RestoreState(const ParamLeaves& weights,
                      const ParamLeaves& first_moment,
                      const ParamLeaves& second_moment,
                      int64_t optimizer_steps);
  const AdamW& optimizer() const { return *optimizer_; }
  // The gradients' memory (GrpoOptions::bf16_gradients halves the
  // matrices').
  size_t gradient_bytes() const { return grads_.total_bytes(); }

  // Makes `weights` (same names and shapes as weights(); dtypes converted
  // where they differ) the frozen KL reference, in place. After a
  // supervised warm start the reference should be the warm-started policy
  // (as when GRPO starts from an SFT checkpoint), not the model before it.
  // No-op without a reference model (beta 0); FailedPrecondition for a LoRA
  // learner, whose reference is its frozen base. Nothing changes on error.
  Status SetReference(const ParamLeaves& weights);
  // The reference's weights (null without a reference, or with LoRA), and
  // whether SetReference replaced those given to Create (a checkpoint then
  // saves them).
  const ParamLeaves* reference_weights() const {
    return reference_weights_.get();
  }
  bool reference_replaced() const { return reference_replaced_; }

  // The weights the policy computes with, and the sampler must serve: the
  // master itself in float32, the compute copy in mixed precision.
  // With LoRA, the adapter's leaves.
  const ParamLeaves& weights() const {
    if (adapter_ != nullptr) return adapter_->leaves();
    return compute_copy_ != nullptr ? *compute_copy_ : weights_;
  }
  // Runs `fn` on the float32 weights the optimizer updates (what a
  // training checkpoint saves, so a resumed run continues exactly); with
  // LoRA, on the adapter's. In BF16 mixed precision the master is kept
  // split (split_master.h) and is assembled into a temporary copy for the
  // call (4 bytes per parameter while it runs).
  Status WithMasterWeights(FunctionRef<Status(const ParamLeaves&)> fn) const;
  // The master's structure: names and shapes of weights(), all F32 (with
  // LoRA, the adapter's).
  const std::vector<LeafSpec>& master_specs() const;
  // A hash of every bit of the master (replicas that hold the same master
  // agree), without assembling it.
  uint64_t MasterContentHash() const;
  // The adapter being trained (null in full fine-tuning).
  const LoraAdapter* adapter() const { return adapter_.get(); }
  // The gradients of the last optimizer step, before clipping.
  const ParamLeaves& gradients() const { return grads_; }
  int64_t optimizer_steps() const { return optimizer_->steps(); }
  const GrpoOptions& options() const { return options_; }
  Mesh* mesh() const { return actor_; }
  // Told, on Step's thread, when a step enters its "reference" and
  // "training" phases (for a progress display; may be empty).
  void set_phase_observer(std::function<void(const char* phase)> observer) {
    phase_observer_ = std::move(observer);
  }

  // Data parallelism (data_parallel.h): from now on Step and SftStep take
  // this rank's share of a global batch, normalise the loss by the global
  // batch's counts, sum the gradients over the ranks in rank order before
  // every optimizer step (so all replicas apply the same update), and
  // report metrics of the global batch. Every rank must call them in the
  // same order with its share; a step that fails on one rank fails on all.
  // Null (the default) is one process. `group` must outlive the learner.
  void set_data_parallel(DataParallelGroup* group) { data_parallel_ = group; }
  DataParallelGroup* data_parallel() const { return data_parallel_; }
  int64_t sample_vocab() const { return policy_->sample_vocab(); }

 private:
  GrpoLearner(const ModelConfig& config, const GrpoOptions& options,
              Mesh* actor, Mesh* reference_mesh, ParamLeaves weights,
              ParamLeaves grads);
  static StatusOr<std::unique_ptr<GrpoLearner>> CreateLora(
      const ModelConfig& config, const ParamLeaves& base, Mesh* actor,
      Mesh* reference_mesh, const GrpoOptions& options);
  // Makes `master` (of master_specs()) the weights the optimizer updates
  // and refreshes the compute copy.
  Status AssignMaster(const ParamLeaves& master);
  // What the optimizer updates when it is not a split master: the float32
  // master weights, or the adapter.
  ParamLeaves& Trained() {
    return adapter_ != nullptr ? adapter_->leaves() : weights_;
  }
  const ParamLeaves& Trained() const {
    return adapter_ != nullptr ? adapter_->leaves() : weights_;
  }
  // Logprobs of every completion token under `model`, micro-batch by
  // micro-batch, into out[i].
  // With `entropy_sum`, also adds up the entropy of the policy's tempered
  // distribution at every completion token.
  Status ScoreAll(TrainableTransformer& model,
                  std::span<const Completion> batch,
                  std::vector<std::vector<float>>& out,
                  double* entropy_sum = nullptr);
  // [begin, end) ranges of the batch of at most max_tokens tokens each
  // (by default the policy's micro-batch).
  std::vector<std::pair<size_t, size_t>> MicroBatches(
      std::span<const Completion> batch, int64_t max_tokens) const;
  std::vector<std::pair<size_t, size_t>> MicroBatches(
      std::span<const Completion> batch) const {
    return MicroBatches(batch, options_.max_micro_batch_tokens);
  }
  // One optimizer step per iteration on the batch; metrics of the first.
  Status Iterate(std::span<const Completion> batch,
                 std::span<const double> advantages,
                 const std::vector<std::vector<float>>& ref_logp,
                 GrpoStepMetrics& m);
  Status SaveSnapshot();
  Status RestoreSnapshot();
  // optimizer_->Step on the master weights, then RefreshComputeCopy.
  StatusOr<OptimizerStepStats> OptimizerStep(double learning_rate);
  // Rounds the master into the compute copy (none in float32).
  Status RefreshComputeCopy();
  Status ForwardRange(TrainableTransformer& model,
                      std::span<const Completion> batch, size_t begin,
                      size_t end, float temperature, std::span<float> logprobs,
                      std::span<float> entropies = {});

  // Sums the gradients over the ranks (nothing in one process).
  Status ReduceGradients();
  // Sizes, token counts, groups and rewards of a GRPO batch.
  Status CheckBatch(std::span<const Completion> batch,
                    int64_t group_size) const;
  // tis_cap > 0: the trainer's logprobs at the step's start into
  // trainer_old, and the truncated importance weights against the
  // sampler's into weights (their statistics into m).
  Status TruncatedWeights(std::span<const Completion> batch,
                          const std::vector<std::vector<float>>& logp,
                          std::vector<std::vector<float>>& trainer_old,
                          std::vector<std::vector<float>>& weights,
                          GrpoStepMetrics& m);
  // kl_in_reward: each reward minus beta times its completion's KL between
  // the behaviour and the reference logprobs; the mean KL per token over
  // the global batch into m.kl.
  Status PenalizeRewardsWithKl(std::span<const Completion> batch,
                               const std::vector<std::vector<float>>& ref_logp,
                               std::vector<double>& rewards,
                               GrpoStepMetrics& m);

  const ModelConfig config_;
  const GrpoOptions options_;
  DataParallelGroup* data_parallel_ = nullptr;
  Mesh* const actor_;
  Mesh* const reference_mesh_;
  // The float32 master (empty with LoRA, and with a split master).
  ParamLeaves weights_;
  std::unique_ptr<LoraAdapter> adapter_;  // LoRA only.
  ParamLeaves grads_;
  std::unique_ptr<ParamLeaves> compute_copy_;  // Mixed precision only.
  // BF16 mixed precision: the master as compute_copy_ plus low halves.
  std::unique_ptr<SplitMaster> split_master_;
  std::unique_ptr<ParamLeaves> reference_weights_;
  bool reference_replaced_ = false;
  std::function<void(const char*)> phase_observer_;
  std::unique_ptr<TrainableTransformer> policy_;
  std::unique_ptr<TrainableTransformer> reference_;
  std::unique_ptr<AdamW> optimizer_;
  // The state before a multi-iteration step (see Step).
  struct Snapshot {
    ParamLeaves weights;
    ParamLeaves first_moment;
    ParamLeaves second_moment;
    int64_t optimizer_steps = 0;
  };
  std::unique_ptr<Snapshot> snapshot_;
  // Per-call scratch for building micro-batches.
  std::vector<std::vector<int32_t>> tokens_;
  std::vector<std::vector<int32_t>> targets_;
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_GRPO_LEARNER_H_
