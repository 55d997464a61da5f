#include "trainer_bridge/grpo_learner.h"

#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "base/timing.h"
#include "models/leaf_checksum.h"
#include "models/leaf_copy.h"
#include "models/train/losses.h"

namespace rlrt {
namespace {

// The training-inference mismatch of the first iteration (see
// GrpoStepMetrics) and the policy's mean token entropy (entropy_sum over
// this rank's tokens), over the global batch.
Status RecordMismatch(std::span<const Completion> batch,
                      const std::vector<std::vector<float>>& logp,
                      double entropy_sum, DataParallelGroup* group,
                      GrpoStepMetrics& m) {
  double max_abs = 0, sum_abs = 0;
  double min_delta = std::numeric_limits<double>::infinity();
  double max_delta = -std::numeric_limits<double>::infinity();
  int64_t tokens = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    for (size_t t = 0; t < logp[i].size(); ++t) {
      const double delta = double(logp[i][t]) - batch[i].behaviour_logprobs[t];
      max_abs = std::max(max_abs, std::abs(delta));
      sum_abs += std::abs(delta);
      min_delta = std::min(min_delta, delta);
      max_delta = std::max(max_delta, delta);
      ++tokens;
    }
  }
  double sums[] = {sum_abs, double(tokens), entropy_sum};
  // -min_delta: the minimum rides in the same max reduction.
  double maxima[] = {max_abs, max_delta, -min_delta};
  RETURN_IF_ERROR(ReduceMetrics(group, sums, ReduceOp::kSum));
  RETURN_IF_ERROR(ReduceMetrics(group, maxima, ReduceOp::kMax));
  m.logprob_mismatch_max = maxima[0];
  m.logprob_mismatch_mean = sums[1] > 0 ? sums[0] / sums[1] : 0;
  m.ratio_min = sums[1] > 0 ? std::exp(-maxima[2]) : 1;
  m.ratio_max = sums[1] > 0 ? std::exp(maxima[1]) : 1;
  m.entropy_mean = sums[1] > 0 ? sums[2] / sums[1] : 0;
  return OkStatus();
}

void Zero(ParamLeaves& leaves) {
  for (size_t i = 0; i < leaves.size(); ++i)
    std::memset(leaves.data(i), 0, leaves.bytes(i));
}

// Frees a model's activations until its next Forward; only memory is at
// stake, so a failure is logged, not returned (every rank must go on to the
// step's collectives).
void ReleaseActivations(TrainableTransformer& model, const char* which) {
  if (Status released = model.ReleaseWorkspace(); !released.ok()) {
    LOG(WARNING) << which << " workspace not released: " << released;
  }
}

}  // namespace

std::vector<std::pair<size_t, size_t>> GrpoLearner::MicroBatches(
    std::span<const Completion> batch, int64_t max_tokens) const {
  std::vector<std::pair<size_t, size_t>> ranges;
  size_t begin = 0;
  int64_t tokens = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const int64_t n = batch[i].prompt.size() + batch[i].tokens.size();
    if (i > begin && tokens + n > max_tokens) {
      ranges.emplace_back(begin, i);
      begin = i;
      tokens = 0;
    }
    tokens += n;
  }
  if (begin < batch.size()) ranges.emplace_back(begin, batch.size());
  return ranges;
}

Status GrpoLearner::ForwardRange(TrainableTransformer& model,
                                 std::span<const Completion> batch,
                                 size_t begin, size_t end, float temperature,
                                 std::span<float> logprobs,
                                 std::span<float> entropies) {
  tokens_.resize(end - begin);
  targets_.resize(end - begin);
  std::vector<TrainSequence> sequences;
  for (size_t i = begin; i < end; ++i) {
    const Completion& c = batch[i];
    std::vector<int32_t>& tokens = tokens_[i - begin];
    std::vector<int32_t>& targets = targets_[i - begin];
    tokens.assign(c.prompt.begin(), c.prompt.end());
    tokens.insert(tokens.end(), c.tokens.begin(), c.tokens.end());
    targets.clear();
    for (size_t t = c.prompt.size() - 1; t + 1 < tokens.size(); ++t)
      targets.push_back(static_cast<int32_t>(t));
    sequences.push_back({tokens, targets});
  }
  return model.Forward(sequences, temperature, logprobs, {}, entropies);
}

Status GrpoLearner::ScoreAll(TrainableTransformer& model,
                             std::span<const Completion> batch,
                             std::vector<std::vector<float>>& out,
                             double* entropy_sum) {
  out.resize(batch.size());
  std::vector<float> flat, entropies;
  // The model's own workspace bounds its micro-batches (the reference's
  // may be smaller than the policy's).
  for (auto [begin, end] : MicroBatches(batch, model.options().max_tokens)) {
    int64_t n = 0;
    for (size_t i = begin; i < end; ++i) n += batch[i].tokens.size();
    flat.resize(n);
    entropies.resize(entropy_sum != nullptr ? n : 0);
    RETURN_IF_ERROR(ForwardRange(model, batch, begin, end, options_.temperature,
                                 flat, entropies));
    for (float h : entropies) *entropy_sum += h;
    int64_t at = 0;
    for (size_t i = begin; i < end; ++i) {
      out[i].assign(flat.begin() + at,
                    flat.begin() + at + batch[i].tokens.size());
      at += batch[i].tokens.size();
    }
  }
  return OkStatus();
}

Status GrpoLearner::CheckBatch(std::span<const Completion> batch,
                               int64_t group_size) const {
  if (batch.empty()) return InvalidArgumentError("empty GRPO batch");
  if (group_size < 1 || batch.size() % group_size != 0)
    return InvalidArgumentError(std::to_string(batch.size()) +
                                " completions do not split into groups of " +
                                std::to_string(group_size));
  for (size_t i = 0; i < batch.size(); ++i) {
    const Completion& c = batch[i];
    if (c.prompt.empty() || c.tokens.empty())
      return InvalidArgumentError("completion " + std::to_string(i) +
                                  " has an empty prompt or no tokens");
    if (c.behaviour_logprobs.size() != c.tokens.size())
      return InvalidArgumentError(
          "completion " + std::to_string(i) +
          ": one behaviour logprob per token is needed");
    if (!std::isfinite(c.reward))
      return InvalidArgumentError("completion " + std::to_string(i) +
                                  " has a non-finite reward");
    const int64_t length = c.prompt.size() + c.tokens.size();
    if (length > options_.max_micro_batch_tokens ||
        (reference_ && length > reference_->options().max_tokens))
      return InvalidArgumentError("completion " + std::to_string(i) +
                                  " is longer than a micro-batch");
  }
  return OkStatus();
}

Status GrpoLearner::TruncatedWeights(
    std::span<const Completion> batch,
    const std::vector<std::vector<float>>& logp,
    std::vector<std::vector<float>>& trainer_old,
    std::vector<std::vector<float>>& weights, GrpoStepMetrics& m) {
  trainer_old = logp;
  weights.resize(batch.size());
  int64_t capped = 0;
  double sums[3] = {};  // Weight sum, tokens, capped.
  for (size_t i = 0; i < batch.size(); ++i) {
    weights[i] = TruncatedImportanceWeights(
        trainer_old[i], batch[i].behaviour_logprobs, options_.tis_cap, &capped);
    for (float w : weights[i]) sums[0] += w;
    sums[1] += weights[i].size();
  }
  sums[2] = double(capped);
  RETURN_IF_ERROR(ReduceMetrics(data_parallel_, sums, ReduceOp::kSum));
  m.tis_weight_mean = sums[1] > 0 ? sums[0] / sums[1] : 0;
  m.tis_capped_fraction = sums[1] > 0 ? sums[2] / sums[1] : 0;
  return OkStatus();
}

Status GrpoLearner::PenalizeRewardsWithKl(
    std::span<const Completion> batch,
    const std::vector<std::vector<float>>& ref_logp,
    std::vector<double>& rewards, GrpoStepMetrics& m) {
  std::vector<std::vector<float>> behaviour;
  for (const Completion& c : batch) behaviour.push_back(c.behaviour_logprobs);
  const std::vector<double> penalized =
      KlPenalizedRewards(rewards, behaviour, ref_logp, options_.loss.beta,
                         options_.loss.kl_estimator);
  // Each penalty is beta times its completion's KL (beta > 0: there is a
  // reference), so the metric needs no second pass over the tokens.
  double sums[2] = {};  // KL, tokens.
  for (size_t i = 0; i < batch.size(); ++i) {
    sums[0] += (rewards[i] - penalized[i]) / options_.loss.beta;
    sums[1] += ref_logp[i].size();
  }
  RETURN_IF_ERROR(ReduceMetrics(data_parallel_, sums, ReduceOp::kSum));
  m.kl = sums[1] > 0 ? sums[0] / sums[1] : 0;
  rewards = penalized;
  return OkStatus();
}

Status GrpoLearner::ReduceGradients() {
  if (data_parallel_ == nullptr) return OkStatus();
  return data_parallel_->SumLeavesInRankOrder(grads_);
}

StatusOr<GrpoStepMetrics> GrpoLearner::Step(std::span<const Completion> batch,
                                            int64_t group_size) {
  GrpoStepMetrics m;
  const SteadyClock::time_point start = SteadyClock::now();
  std::vector<double> rewards;
  for (const Completion& c : batch) rewards.push_back(c.reward);
  // A bad batch on any rank stops every rank.
  RETURN_IF_ERROR(AgreeOnStatus(data_parallel_, CheckBatch(batch, group_size)));

  std::vector<std::vector<float>> ref_logp;
  if (reference_) {
    if (phase_observer_) phase_observer_("reference");
    const SteadyClock::time_point ref_start = SteadyClock::now();
    RETURN_IF_ERROR(ScoreAll(*reference_, batch, ref_logp));
    // Its activations are dead until the next step's scoring; the policy's
    // forward and backward, which follow, are the step's memory peak.
    ReleaseActivations(*reference_, "reference");
    m.reference_seconds = SecondsSince(ref_start);
  }
  if (phase_observer_) phase_observer_("training");
  if (options_.kl_in_reward && reference_)
    RETURN_IF_ERROR(PenalizeRewardsWithKl(batch, ref_logp, rewards, m));
  // Groups never straddle ranks, so advantages are computed where the group
  // is; REINFORCE++ then whitens them with the global batch's statistics.
  StatusOr<std::vector<double>> advantages =
      GroupAdvantages(rewards, group_size, options_.advantage_estimator,
                      options_.scale_rewards);
  RETURN_IF_ERROR(AgreeOnStatus(data_parallel_, advantages.status()));
  if (options_.advantage_estimator == AdvantageEstimator::kReinforcePlusPlus) {
    double moments[3] = {double(advantages->size())};
    for (double a : *advantages) {
      moments[1] += a;
      moments[2] += a * a;
    }
    RETURN_IF_ERROR(ReduceMetrics(data_parallel_, moments, ReduceOp::kSum));
    const double mean = moments[1] / moments[0];
    const double var = std::max(0.0, moments[2] / moments[0] - mean * mean);
    WhitenAdvantages(*advantages, mean, std::sqrt(var));
  }

  if (options_.num_iterations > 1) RETURN_IF_ERROR(SaveSnapshot());
  Status status = Iterate(batch, *advantages, ref_logp, m);
  // The activations are dead until the next step. Released, they are not
  // resident while the next step's reference scores (with the gradients
  // and the reference's own workspace), which would otherwise be the
  // step's memory peak.
  ReleaseActivations(*policy_, "policy");
  if (!status.ok()) {
    if (options_.num_iterations > 1) {
      const Status restored = RestoreSnapshot();
      if (!restored.ok()) {
        return InternalError(
            "a failed GRPO step could not restore the weights (" +
            restored.ToString() +
            "); the step failed with: " + status.ToString());
      }
    }
    return status;
  }

  // Sums over the global batch: [n, sum, sum2, adv_sum, adv2, length,
  // truncated, train_tokens].
  double sums[8] = {double(batch.size())};
  double longest = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    // The task's rewards (before any KL penalty), as the loop reports them.
    sums[1] += batch[i].reward;
    sums[2] += batch[i].reward * batch[i].reward;
    sums[3] += (*advantages)[i];
    sums[4] += (*advantages)[i] * (*advantages)[i];
    sums[5] += batch[i].tokens.size();
    sums[6] += batch[i].truncated;
    longest = std::max<double>(longest, batch[i].tokens.size());
  }
  sums[7] = static_cast<double>(m.train_tokens);
  RETURN_IF_ERROR(ReduceMetrics(data_parallel_, sums, ReduceOp::kSum));
  RETURN_IF_ERROR(ReduceMetrics(data_parallel_, {&longest, 1}, ReduceOp::kMax));
  const auto [n, sum, sum2, adv_sum, adv2, length, truncated, train_tokens] =
      sums;
  m.completion_length_max = static_cast<int64_t>(longest);
  m.train_tokens = static_cast<int64_t>(train_tokens);
  m.reward_mean = sum / n;
  m.reward_std =
      std::sqrt(std::max(0.0, sum2 / n - m.reward_mean * m.reward_mean));
  m.advantage_mean = adv_sum / n;
  m.advantage_std =
      std::sqrt(std::max(0.0, adv2 / n - m.advantage_mean * m.advantage_mean));
  m.completion_length_mean = length / n;
  m.truncated_fraction = truncated / n;
  m.train_seconds = SecondsSince(start) - m.reference_seconds;
  return m;
}

Status GrpoLearner::Iterate(std::span<const Completion> batch,
                            std::span<const double> advantages,
                            const std::vector<std::vector<float>>& ref_logp,
                            GrpoStepMetrics& m) {
  const auto micro = MicroBatches(batch);
  // With the KL in the reward the loss has no KL term.
  GrpoLossOptions loss_options = options_.loss;
  if (options_.kl_in_reward) loss_options.beta = 0;
  std::vector<std::vector<float>> logp;
  // Truncated importance sampling: the trainer's logprobs at the step's
  // start are the ratio's denominator, and their weights against the
  // sampler's stay fixed over the iterations.
  std::vector<std::vector<float>> trainer_old, is_weights;
  std::vector<std::vector<float>> dlogp(batch.size());
  for (size_t i = 0; i < batch.size(); ++i)
    dlogp[i].resize(batch[i].tokens.size());
  for (int iteration = 0; iteration < options_.num_iterations; ++iteration) {
    double entropy_sum = 0;
    RETURN_IF_ERROR(ScoreAll(*policy_, batch, logp,
                             iteration == 0 ? &entropy_sum : nullptr));
    if (iteration == 0) {
      RETURN_IF_ERROR(
          RecordMismatch(batch, logp, entropy_sum, data_parallel_, m));
      if (options_.tis_cap > 0)
        RETURN_IF_ERROR(
            TruncatedWeights(batch, logp, trainer_old, is_weights, m));
    }
    std::vector<CompletionTerms> terms;
    std::vector<std::span<float>> grads;
    for (size_t i = 0; i < batch.size(); ++i) {
      terms.push_back(
          {logp[i],
           options_.tis_cap > 0
               ? std::span<const float>(trainer_old[i])
               : std::span<const float>(batch[i].behaviour_logprobs),
           loss_options.beta > 0 ? std::span<const float>(ref_logp[i])
                                 : std::span<const float>(),
           advantages[i], batch[i].truncated,
           options_.tis_cap > 0 ? std::span<const float>(is_weights[i])
                                : std::span<const float>()});
      grads.push_back(dlogp[i]);
    }
    // The loss is normalised by the global batch's counts, so every rank's
    // gradient is its share of the global gradient, and the shares add up;
    // bnpo's token mean is this rank's, and the ranks' means are averaged.
    const LossCounts local = CountLossTerms(terms, loss_options);
    double counts[] = {double(local.sequences), double(local.tokens)};
    RETURN_IF_ERROR(ReduceMetrics(data_parallel_, counts, ReduceOp::kSum));
    if (loss_options.loss_type == LossType::kBnpo) {
      counts[1] = double(local.tokens) *
                  (data_parallel_ != nullptr ? data_parallel_->size() : 1);
    }
    ASSIGN_OR_RETURN(GrpoLossStats loss,
                     GrpoLoss(terms, loss_options, grads,
                              LossCounts{static_cast<int64_t>(counts[0]),
                                         static_cast<int64_t>(counts[1])}));
    double stats[] = {loss.loss, loss.clip_fraction, loss.kl_mean,
                      loss.ratio_mean, loss.dual_clip_fraction};
    RETURN_IF_ERROR(ReduceMetrics(data_parallel_, stats, ReduceOp::kSum));
    loss.loss = stats[0];
    loss.clip_fraction = stats[1];
    loss.kl_mean = stats[2];
    loss.ratio_mean = stats[3];
    loss.dual_clip_fraction = stats[4];
    // The global loss: every rank takes the same decision.
    if (!std::isfinite(loss.loss)) {
      return FailedPreconditionError(
          "non-finite GRPO loss at iteration " + std::to_string(iteration) +
          "; the step is refused and the weights are unchanged");
    }
    Zero(grads_);
    std::vector<float> flat_logp, flat_grad;
    for (auto [begin, end] : micro) {
      flat_logp.clear();
      flat_grad.clear();
      for (size_t i = begin; i < end; ++i)
        flat_grad.insert(flat_grad.end(), dlogp[i].begin(), dlogp[i].end());
      // With one micro-batch the scoring forward is still in place.
      if (micro.size() > 1) {
        flat_logp.resize(flat_grad.size());
        RETURN_IF_ERROR(ForwardRange(*policy_, batch, begin, end,
                                     options_.temperature, flat_logp));
      }
      RETURN_IF_ERROR(policy_->Backward(flat_grad, grads_));
      m.train_tokens += static_cast<int64_t>(flat_grad.size());
    }
    const SteadyClock::time_point reduce_start = SteadyClock::now();
    RETURN_IF_ERROR(ReduceGradients());
    m.gradient_reduce_seconds += SecondsSince(reduce_start);
    m.learning_rate = options_.lr.At(optimizer_->steps());
    ASSIGN_OR_RETURN(OptimizerStepStats step, OptimizerStep(m.learning_rate));
    if (iteration == 0) {
      m.loss = loss.loss;
      m.clip_fraction = loss.clip_fraction;
      m.dual_clip_fraction = loss.dual_clip_fraction;
      if (!options_.kl_in_reward) m.kl = loss.kl_mean;
      m.ratio_mean = loss.ratio_mean;
      m.grad_norm = step.grad_norm;
    }
  }
  return OkStatus();
}

const std::vector<LeafSpec>& GrpoLearner::master_specs() const {
  return split_master_ != nullptr ? split_master_->master_specs()
                                  : Trained().specs();
}

Status GrpoLearner::WithMasterWeights(
    FunctionRef<Status(const ParamLeaves&)> fn) const {
  if (split_master_ == nullptr) return fn(Trained());
  ASSIGN_OR_RETURN(ParamLeaves master,
                   ParamLeaves::Allocate(split_master_->master_specs()));
  RETURN_IF_ERROR(split_master_->CopyTo(master, actor_));
  return fn(master);
}

uint64_t GrpoLearner::MasterContentHash() const {
  return split_master_ != nullptr ? split_master_->ContentHash(actor_)
                                  : ContentHash(Trained(), actor_);
}

Status GrpoLearner::AssignMaster(const ParamLeaves& master) {
  if (split_master_ != nullptr) {
    RETURN_IF_ERROR(split_master_->Assign(master, actor_));
  } else {
    RETURN_IF_ERROR(CopyIntoLeaves(
        Trained(), [&](size_t i) { return master.data(i); }, actor_));
  }
  return RefreshComputeCopy();
}

Status GrpoLearner::SaveSnapshot() {
  if (snapshot_ == nullptr) {
    ASSIGN_OR_RETURN(ParamLeaves weights,
                     ParamLeaves::Allocate(master_specs()));
    const std::vector<LeafSpec>& moments = optimizer_->first_moment().specs();
    ASSIGN_OR_RETURN(ParamLeaves first, ParamLeaves::Allocate(moments));
    ASSIGN_OR_RETURN(ParamLeaves second, ParamLeaves::Allocate(moments));
    snapshot_.reset(new Snapshot{std::move(weights), std::move(first),
                                 std::move(second), 0});
  }
  auto copy = [&](ParamLeaves& to, const ParamLeaves& from) {
    return CopyIntoLeaves(
        to, [&](size_t i) { return from.data(i); }, actor_);
  };
  if (split_master_ != nullptr) {
    RETURN_IF_ERROR(split_master_->CopyTo(snapshot_->weights, actor_));
  } else {
    RETURN_IF_ERROR(copy(snapshot_->weights, Trained()));
  }
  RETURN_IF_ERROR(copy(snapshot_->first_moment, optimizer_->first_moment()));
  RETURN_IF_ERROR(copy(snapshot_->second_moment, optimizer_->second_moment()));
  snapshot_->optimizer_steps = optimizer_->steps();
  return OkStatus();
}

Status GrpoLearner::RestoreSnapshot() {
  RETURN_IF_ERROR(optimizer_->Restore(snapshot_->first_moment,
                                      snapshot_->second_moment,
                                      snapshot_->optimizer_steps));
  return AssignMaster(snapshot_->weights);
}

StatusOr<OptimizerStepStats> GrpoLearner::OptimizerStep(double learning_rate) {
  ASSIGN_OR_RETURN(
      OptimizerStepStats step,
      split_master_ != nullptr
          ? optimizer_->Step(*split_master_, grads_, learning_rate, actor_)
          : optimizer_->Step(Trained(), grads_, learning_rate, actor_));
  RETURN_IF_ERROR(RefreshComputeCopy());
  return step;
}

Status GrpoLearner::RefreshComputeCopy() {
  if (adapter_ != nullptr) {
    // As for the compute copy below: the policy's Backward must see that
    // the adapter moved since its Forward.
    adapter_->leaves().set_version(adapter_->leaves().version() + 1);
    return OkStatus();
  }
  if (compute_copy_ == nullptr) return OkStatus();
  // A split master's high halves are the copy, already written.
  if (split_master_ == nullptr)
    RETURN_IF_ERROR(ConvertLeaves(weights_, *compute_copy_, actor_));
  // The policy's Backward checks that its weights did not move since its
  // Forward; the copy's version is how it sees that they did.
  compute_copy_->set_version(compute_copy_->version() + 1);
  return OkStatus();
}

StatusOr<SftStepMetrics> GrpoLearner::SftStep(
    std::span<const SftExample> batch, std::optional<double> learning_rate) {
  // The micro-batching and forward of Step work on Completions.
  std::vector<Completion> as_completions(batch.size());
  auto convert = [&]() -> Status {
    if (batch.empty()) return InvalidArgumentError("empty SFT batch");
    for (size_t i = 0; i < batch.size(); ++i) {
      const SftExample& e = batch[i];
      if (e.prompt.empty() || e.tokens.empty())
        return InvalidArgumentError("SFT example " + std::to_string(i) +
                                    " has an empty prompt or no tokens");
      if (static_cast<int64_t>(e.prompt.size() + e.tokens.size()) >
          options_.max_micro_batch_tokens)
        return InvalidArgumentError("SFT example " + std::to_string(i) +
                                    " is longer than a micro-batch");
      as_completions[i].prompt = e.prompt;
      as_completions[i].tokens = e.tokens;
    }
    return OkStatus();
  };
  RETURN_IF_ERROR(AgreeOnStatus(data_parallel_, convert()));
  SftStepMetrics m;
  const SteadyClock::time_point start = SteadyClock::now();
  Zero(grads_);
  std::vector<float> logp, dlogp;
  // The mean is over the global batch's tokens (all ranks).
  double global_tokens = 0;
  for (const SftExample& e : batch) global_tokens += e.tokens.size();
  RETURN_IF_ERROR(
      ReduceMetrics(data_parallel_, {&global_tokens, 1}, ReduceOp::kSum));
  const int64_t total = static_cast<int64_t>(global_tokens);
  double loss_sum = 0;
  for (auto [begin, end] : MicroBatches(as_completions)) {
    int64_t n = 0;
    for (size_t i = begin; i < end; ++i) n += batch[i].tokens.size();
    logp.resize(n);
    dlogp.resize(n);
    RETURN_IF_ERROR(ForwardRange(*policy_, as_completions, begin, end,
                                 /*temperature=*/1.0f, logp));
    // The loss is the mean over the whole batch, so each micro-batch's
    // per-token gradient is -1/total, not -1/n.
    ASSIGN_OR_RETURN(double micro_loss, CrossEntropyLoss(logp, dlogp));
    const float scale = static_cast<float>(double(n) / double(total));
    for (float& g : dlogp) g *= scale;
    loss_sum += micro_loss * n;
    RETURN_IF_ERROR(policy_->Backward(dlogp, grads_));
  }
  RETURN_IF_ERROR(
      ReduceMetrics(data_parallel_, {&loss_sum, 1}, ReduceOp::kSum));
  RETURN_IF_ERROR(ReduceGradients());
  m.loss = loss_sum / total;
  if (!std::isfinite(m.loss)) {
    return FailedPreconditionError(
        "non-finite SFT loss; the step is refused and the weights are "
        "unchanged");
  }
  m.tokens = total;
  m.learning_rate = learning_rate.value_or(options_.lr.At(optimizer_->steps()));
  ASSIGN_OR_RETURN(OptimizerStepStats step, OptimizerStep(m.learning_rate));
  m.grad_norm = step.grad_norm;
  m.seconds = SecondsSince(start);
  return m;
}

Status GrpoLearner::RestoreState(const ParamLeaves& weights,
                                 const ParamLeaves& first_moment,
                                 const ParamLeaves& second_moment,
                                 int64_t optimizer_steps) {
  if (weights.specs() != master_specs())
    return InvalidArgumentError(
        "the saved weights have another structure than the learner's "
        "float32 master weights (or its adapter)");
  RETURN_IF_ERROR(
      optimizer_->Restore(first_moment, second_moment, optimizer_steps));
  return AssignMaster(weights);
}

Status GrpoLearner::SetReference(const ParamLeaves& weights) {
  if (adapter_ != nullptr)
    return FailedPreconditionError(
        "a LoRA learner's KL reference is its frozen base; it cannot be "
        "replaced");
  if (reference_weights_ == nullptr) return OkStatus();
  RETURN_IF_ERROR(ConvertLeaves(weights, *reference_weights_, reference_mesh_));
  reference_replaced_ = true;
  return OkStatus();
}

}  // namespace rlrt
