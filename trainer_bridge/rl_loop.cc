#include "trainer_bridge/rl_loop.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>
#include <string>

#include "base/timing.h"
#include "models/leaf_checksum.h"
#include "trainer_bridge/data_parallel.h"
#include "trainer_bridge/reward_shaping.h"

namespace rlrt {
namespace {

// One batch submitted to the engine and not yet trained on.
struct InFlight {
  int64_t index = 0;
  int64_t first_prompt = 0;  // This rank's share starts here in the batch.
  std::vector<std::vector<int32_t>> prompts;
  std::vector<RequestHandle> handles;
};

void AbortAndDrain(RolloutBackend& rollouts, std::deque<InFlight>& pending) {
  for (InFlight& batch : pending)
    for (const RequestHandle& h : batch.handles) rollouts.Abort(h);
  for (InFlight& batch : pending)
    for (const RequestHandle& h : batch.handles) (void)h.Wait();
  pending.clear();
}

Status CheckOptions(const RlLoopOptions& o, const GrpoLearner& learner,
                    const RolloutBackend& rollouts) {
  if (o.steps < 1) return InvalidArgumentError("steps must be >= 1");
  if (o.first_step < 0 || o.first_step >= o.steps)
    return InvalidArgumentError("first_step must be in [0, steps)");
  if (o.batch_size < 1) return InvalidArgumentError("batch_size must be >= 1");
  if (o.num_generations < 2)
    return InvalidArgumentError(
        "num_generations must be >= 2: a group of one has no relative "
        "advantage");
  if (o.max_new_tokens < 1)
    return InvalidArgumentError("max_new_tokens must be >= 1");
  if (o.max_staleness < 0)
    return InvalidArgumentError("max_staleness must be >= 0");
  if (o.sync_every < 1) return InvalidArgumentError("sync_every must be >= 1");
  if (o.dynamic_sampling && o.max_sampling_rounds < 1)
    return InvalidArgumentError("max_sampling_rounds must be >= 1");
  if (o.overlong_buffer < 0 || o.overlong_buffer > o.max_new_tokens ||
      !(o.overlong_penalty >= 0))
    return InvalidArgumentError(
        "overlong_buffer must be in [0, max_new_tokens] and "
        "overlong_penalty >= 0");
  if (const DataParallelGroup* group = learner.data_parallel()) {
    StatusOr<RankShare> share =
        ShareOf(o.batch_size, group->rank(), group->size(), "the batch size");
    if (!share.ok()) return share.status();
  }
  // The learner scores tokens under the tempered distribution; any other
  // temperature would make every importance ratio wrong.
  if (o.temperature != learner.options().temperature)
    return InvalidArgumentError(
        "the rollout temperature (" + std::to_string(o.temperature) +
        ") differs from the learner's (" +
        std::to_string(learner.options().temperature) + ")");
  // Likewise the set of ids the softmax runs over.
  if (learner.sample_vocab() != rollouts.vocab_size())
    return InvalidArgumentError(
        "the learner normalises logprobs over " +
        std::to_string(learner.sample_vocab()) + " ids, the sampler over " +
        std::to_string(rollouts.vocab_size()) +
        " (set GrpoOptions::sample_vocab to the engine's vocab_size())");
  return OkStatus();
}

// The task's batch index of sampling round `round` (0-based) of step `k`.
// With dynamic sampling each step owns max_sampling_rounds consecutive
// indices, so extra rounds draw fresh prompts and seeds that depend only on
// (k, round), whatever the overlap did.
int64_t BatchIndex(const RlLoopOptions& o, int64_t k, int64_t round) {
  return o.dynamic_sampling ? k * o.max_sampling_rounds + round : k;
}

// `lora_name`: the adapter the requests run with (empty: the base).
// With data parallelism `share` is this rank's part of the batch's prompts;
// seeds and prompt numbers stay those of the whole batch, so a prompt is
// sampled exactly as one process would sample it.
StatusOr<InFlight> Submit(RolloutBackend& rollouts, RlTask& task, int64_t index,
                          const RlLoopOptions& o, const std::string& lora_name,
                          RankShare share) {
  InFlight batch;
  batch.index = index;
  batch.first_prompt = share.begin;
  ASSIGN_OR_RETURN(batch.prompts, task.Prompts(index, o.batch_size));
  if (static_cast<int64_t>(batch.prompts.size()) != o.batch_size)
    return InternalError(
        "the task gave " + std::to_string(batch.prompts.size()) +
        " prompts for a batch of " + std::to_string(o.batch_size));
  batch.prompts.erase(batch.prompts.begin() + share.end, batch.prompts.end());
  batch.prompts.erase(batch.prompts.begin(),
                      batch.prompts.begin() + share.begin);
  const uint64_t batch_seed = SampleSeed(o.seed, static_cast<int32_t>(index));
  for (size_t p = 0; p < batch.prompts.size(); ++p) {
    GenerateRequest r;
    r.input_ids = batch.prompts[p];
    r.n = static_cast<int32_t>(o.num_generations);
    r.sampling.temperature = o.temperature;
    r.stop.max_new_tokens = o.max_new_tokens;
    r.seed =
        SampleSeed(batch_seed, static_cast<int32_t>(batch.first_prompt + p));
    r.return_logprobs = true;
    r.lora_name = lora_name;
    StatusOr<RequestHandle> handle = rollouts.Submit(std::move(r));
    if (!handle.ok()) {
      std::deque<InFlight> partial;
      partial.push_back(std::move(batch));
      AbortAndDrain(rollouts, partial);
      return Status(handle.status().code(),
                    "batch " + std::to_string(index) + " prompt " +
                        std::to_string(p) + ": " +
                        std::string(handle.status().message()));
    }
    batch.handles.push_back(*std::move(handle));
  }
  return batch;
}

// One prompt's completions, scored.
struct ScoredGroup {
  std::vector<Completion> completions;
  std::map<std::string, double> part_sums;  // Over the group's completions.
  // Rewards not all equal: the group carries a learning signal (DAPO).
  bool informative = false;
};

// Waits for `batch` and scores each prompt's group; adds the batch's tokens,
// versions and times to the rollout half of `m` (this rank's; see
// ReduceRolloutMetrics).
StatusOr<std::vector<ScoredGroup>> Collect(InFlight& batch, RlTask& task,
                                           const RlLoopOptions& o,
                                           RlStepMetrics& m,
                                           RlProgress& progress) {
  std::vector<ScoredGroup> groups;
  double batch_seconds = 0;
  const SteadyClock::time_point wait_start = SteadyClock::now();
  for (size_t p = 0; p < batch.handles.size(); ++p) {
    ASSIGN_OR_RETURN(GenerateResult result, batch.handles[p].Wait());
    batch_seconds = std::max(batch_seconds, result.e2e_seconds);
    for (const SampleOutput& s : result.samples) {
      if (s.finish_reason == FinishReason::kAbort)
        return AbortedError("a rollout of batch " +
                            std::to_string(batch.index) + " was aborted");
    }
    const int64_t prompt = batch.first_prompt + static_cast<int64_t>(p);
    StatusOr<std::vector<Reward>> rewards =
        task.ScoreGroup(batch.index, prompt, result.samples);
    if (!rewards.ok())
      return rewards.status().WithContext(
          "scoring prompt " + std::to_string(prompt) + " of batch " +
          std::to_string(batch.index));
    if (rewards->size() != result.samples.size())
      return InternalError(
          "the task scored " + std::to_string(rewards->size()) + " of " +
          std::to_string(result.samples.size()) + " completions");
    ScoredGroup group;
    for (size_t i = 0; i < result.samples.size(); ++i) {
      const SampleOutput& s = result.samples[i];
      Reward& reward = (*rewards)[i];
      if (o.overlong_buffer > 0) {
        const double shaped =
            OverlongPenalty(static_cast<int64_t>(s.token_ids.size()),
                            o.max_new_tokens, o.overlong_buffer);
        reward.total += o.overlong_penalty * shaped;
        reward.parts.emplace_back("overlong", shaped);
      }
      for (const auto& [name, value] : reward.parts)
        group.part_sums[name] += value;
      for (uint64_t v : s.weight_versions) {
        m.sampled_version_min = std::min(m.sampled_version_min, v);
        m.sampled_version_max = std::max(m.sampled_version_max, v);
      }
      m.rollout_tokens += static_cast<int64_t>(s.token_ids.size());
      progress.tokens_done += static_cast<int64_t>(s.token_ids.size());
      if (!group.completions.empty() &&
          reward.total != group.completions.front().reward)
        group.informative = true;
      group.completions.push_back({result.prompt_ids, s.token_ids, s.logprobs,
                                   reward.total,
                                   s.finish_reason == FinishReason::kLength});
    }
    if (o.on_progress) o.on_progress(progress);
    groups.push_back(std::move(group));
  }
  m.rollout_seconds += batch_seconds;
  m.wait_seconds += SecondsSince(wait_start);
  return groups;
}

// The groups this rank trains on in step `k`, from its first batch and,
// with dynamic sampling, more rounds of fresh prompts until `wanted`
// informative groups are in hand or max_sampling_rounds are spent. When
// the rounds run out, uninformative groups pad the batch back to `wanted`
// (their advantages are 0: they only add KL and normalisation terms), so
// every step trains the same number of groups.
StatusOr<std::vector<ScoredGroup>> GatherGroups(
    RolloutBackend& rollouts, RlTask& task, InFlight& first, int64_t k,
    const RlLoopOptions& o, const std::string& lora_name, RankShare share,
    RlStepMetrics& m) {
  RlProgress progress{
      k + 1, o.steps, "sampling", 0,
      (share.end - share.begin) * o.num_generations * o.max_new_tokens};
  if (o.on_progress) o.on_progress(progress);
  ASSIGN_OR_RETURN(std::vector<ScoredGroup> groups,
                   Collect(first, task, o, m, progress));
  m.sampling_rounds = 1;
  if (!o.dynamic_sampling) return groups;
  const size_t wanted = static_cast<size_t>(share.end - share.begin);
  std::vector<ScoredGroup> kept, flat;
  auto sort_out = [&](std::vector<ScoredGroup>& round) {
    for (ScoredGroup& g : round) {
      if (g.informative && kept.size() < wanted) {
        kept.push_back(std::move(g));
      } else if (!g.informative) {
        ++m.groups_dropped;
        flat.push_back(std::move(g));
      }
    }
  };
  sort_out(groups);
  while (kept.size() < wanted && m.sampling_rounds < o.max_sampling_rounds) {
    ASSIGN_OR_RETURN(InFlight extra,
                     Submit(rollouts, task, BatchIndex(o, k, m.sampling_rounds),
                            o, lora_name, share));
    ++m.sampling_rounds;
    progress.tokens_done = 0;
    StatusOr<std::vector<ScoredGroup>> more =
        Collect(extra, task, o, m, progress);
    if (!more.ok()) {
      std::deque<InFlight> left;
      left.push_back(std::move(extra));
      AbortAndDrain(rollouts, left);
      return more.status();
    }
    sort_out(*more);
  }
  for (size_t i = 0; kept.size() < wanted && i < flat.size(); ++i) {
    kept.push_back(std::move(flat[i]));
    ++m.groups_padded;
  }
  return kept;
}

// The rollout metrics of the global batch: reward parts as means over all
// ranks' completions, tokens summed, times and version lag of the slowest.
// Every rank scores with the same task, so the part names agree.
Status ReduceRolloutMetrics(DataParallelGroup* group, int64_t completions,
                            RlStepMetrics& m) {
  std::vector<double> sums = {double(completions), double(m.rollout_tokens),
                              double(m.groups_dropped),
                              double(m.groups_padded)};
  for (const auto& [name, sum] : m.reward_parts) sums.push_back(sum);
  RETURN_IF_ERROR(ReduceMetrics(group, sums, ReduceOp::kSum));
  double maxima[] = {m.rollout_seconds, m.wait_seconds,
                     double(m.sampled_version_max),
                     -double(m.sampled_version_min), double(m.sampling_rounds)};
  RETURN_IF_ERROR(ReduceMetrics(group, maxima, ReduceOp::kMax));
  m.rollout_tokens = static_cast<int64_t>(sums[1]);
  m.groups_dropped = static_cast<int64_t>(sums[2]);
  m.groups_padded = static_cast<int64_t>(sums[3]);
  size_t i = 4;
  for (auto& [name, value] : m.reward_parts) value = sums[i++] / sums[0];
  m.rollout_seconds = maxima[0];
  m.wait_seconds = maxima[1];
  m.sampled_version_max = static_cast<uint64_t>(maxima[2]);
  m.sampled_version_min = static_cast<uint64_t>(-maxima[3]);
  m.sampling_rounds = static_cast<int64_t>(maxima[4]);
  return OkStatus();
}

// With data parallelism, every rank stops when any rank is asked to.
StatusOr<bool> AgreeToStop(DataParallelGroup* group, bool local) {
  double stop = local ? 1 : 0;
  RETURN_IF_ERROR(ReduceMetrics(group, {&stop, 1}, ReduceOp::kMax));
  return stop > 0;
}

}  // namespace

StatusOr<SyncReport> PushPolicy(RolloutBackend& rollouts,
                                const GrpoLearner& learner,
                                const std::string& lora_name,
                                uint64_t version) {
  if (learner.adapter() != nullptr)
    return rollouts.PushAdapter(*learner.adapter(), lora_name, version);
  return rollouts.PushWeights(learner.weights(), version);
}

StatusOr<uint64_t> PolicyVersion(RolloutBackend& rollouts,
                                 const GrpoLearner& learner,
                                 const std::string& lora_name) {
  if (learner.adapter() != nullptr) return rollouts.AdapterVersion(lora_name);
  return rollouts.WeightVersion();
}

StatusOr<RlRunSummary> RunRlLoop(SamplerEngine& engine, GrpoLearner& learner,
                                 RlTask& task, const RlLoopOptions& options,
                                 const RlStepCallback& on_step) {
  LocalRollouts local(&engine, learner.mesh(), options.verify_sync,
                      options.flush_cache);
  return RunRlLoop(local, learner, task, options, on_step);
}

StatusOr<RlRunSummary> RunRlLoop(RolloutBackend& rollouts, GrpoLearner& learner,
                                 RlTask& task, const RlLoopOptions& options,
                                 const RlStepCallback& on_step) {
  RETURN_IF_ERROR(CheckOptions(options, learner, rollouts));
  DataParallelGroup* const group = learner.data_parallel();
  RankShare share{0, options.batch_size};
  if (group != nullptr) {
    ASSIGN_OR_RETURN(share, ShareOf(options.batch_size, group->rank(),
                                    group->size(), "the batch size"));
  }
  RlRunSummary summary;
  const SteadyClock::time_point run_start = SteadyClock::now();
  const LoraAdapter* adapter = learner.adapter();
  const std::string lora_name = adapter ? options.lora_name : "";
  if (adapter && lora_name.empty())
    return InvalidArgumentError("a LoRA run needs RlLoopOptions::lora_name");
  auto push = [&](uint64_t version) {
    return PushPolicy(rollouts, learner, lora_name, version);
  };
  ASSIGN_OR_RETURN(uint64_t policy_version,
                   PolicyVersion(rollouts, learner, lora_name));
  if (adapter) {
    StatusOr<SyncReport> first = push(++policy_version);
    if (Status agreed = AgreeOnStatus(group, first.status()); !agreed.ok()) {
      if (first.ok()) return agreed;
      return Status(first.status().code(),
                    "the initial adapter push failed: " +
                        std::string(first.status().message()));
    }
  }
  std::deque<InFlight> pending;
  int64_t next_submit = options.first_step;
  // Every exit path aborts what is still generating.
  auto fail = [&](Status status) {
    AbortAndDrain(rollouts, pending);
    return status;
  };

  for (int64_t k = options.first_step; k < options.steps; ++k) {
    const SteadyClock::time_point step_start = SteadyClock::now();
    // Batches up to k + s may be sampled with the weights of step k - 1.
    while (next_submit < options.steps &&
           next_submit <= k + options.max_staleness) {
      StatusOr<InFlight> batch =
          Submit(rollouts, task, BatchIndex(options, next_submit, 0), options,
                 lora_name, share);
      if (!batch.ok()) return fail(batch.status());
      pending.push_back(*std::move(batch));
      ++next_submit;
    }
    RlStepMetrics m;
    m.step = k + 1;
    m.sampled_version_min = std::numeric_limits<uint64_t>::max();
    StatusOr<std::vector<ScoredGroup>> groups = GatherGroups(
        rollouts, task, pending.front(), k, options, lora_name, share, m);
    // A failed batch stays pending, so fail() aborts what is left of it.
    if (Status s = AgreeOnStatus(group, groups.status()); !s.ok())
      return fail(s);
    pending.pop_front();
    if (m.sampled_version_min == std::numeric_limits<uint64_t>::max())
      m.sampled_version_min = 0;
    std::vector<Completion> completions;
    for (ScoredGroup& g : *groups) {
      for (const auto& [name, sum] : g.part_sums) m.reward_parts[name] += sum;
      for (Completion& c : g.completions) completions.push_back(std::move(c));
    }
    if (Status s = ReduceRolloutMetrics(group, completions.size(), m); !s.ok())
      return fail(s);
    m.version_lag = static_cast<int64_t>(policy_version) -
                    static_cast<int64_t>(m.sampled_version_min);

    auto tell = [&](const char* phase) {
      if (options.on_progress)
        options.on_progress({k + 1, options.steps, phase});
    };
    tell("training");
    learner.set_phase_observer(tell);
    StatusOr<GrpoStepMetrics> grpo =
        learner.Step(completions, options.num_generations);
    learner.set_phase_observer({});
    if (!grpo.ok()) {
      return fail(Status(grpo.status().code(),
                         "GRPO step " + std::to_string(k + 1) + ": " +
                             std::string(grpo.status().message())));
    }
    m.grpo = *grpo;
    ++policy_version;
    m.policy_version = policy_version;
    if (group != nullptr) {
      // Same gradient, same update: the replicas must be identical.
      m.ranks = group->size();
      m.replica_weights_hash = learner.MasterContentHash();
      Status same = CheckReplicasIdentical(
          *group, m.replica_weights_hash,
          "the policy weights after step " + std::to_string(k + 1));
      if (!same.ok()) return fail(same);
    }
    StatusOr<bool> stop_now =
        AgreeToStop(group, options.stop_requested && k + 1 < options.steps &&
                               options.stop_requested());
    if (!stop_now.ok()) return fail(stop_now.status());
    const bool last = k + 1 == options.steps || *stop_now;

    if ((k + 1) % options.sync_every == 0 || last) {
      tell("sync");
      const SteadyClock::time_point sync_start = SteadyClock::now();
      StatusOr<SyncReport> report = push(policy_version);
      if (Status agreed = AgreeOnStatus(group, report.status()); !agreed.ok()) {
        if (report.ok()) return fail(agreed);
        return fail(Status(report.status().code(),
                           "sync after step " + std::to_string(k + 1) +
                               " failed, the run stops: " +
                               std::string(report.status().message())));
      }
      m.synced = true;
      m.sync = *report;
      m.sync_seconds = SecondsSince(sync_start);
      summary.final_version = report->version;
    }
    m.step_seconds = SecondsSince(step_start);

    summary.steps = k + 1 - options.first_step;
    summary.rollout_seconds += m.rollout_seconds;
    summary.train_seconds += m.grpo.train_seconds + m.grpo.reference_seconds;
    summary.wait_seconds += m.wait_seconds;
    summary.sync_seconds += m.sync_seconds;
    if (k == options.first_step) summary.first_reward_mean = m.grpo.reward_mean;
    summary.last_reward_mean = m.grpo.reward_mean;
    if (on_step) {
      // E.g. rank 0 writing a checkpoint: its failure stops every rank.
      Status s = AgreeOnStatus(group, on_step(m));
      if (!s.ok()) return fail(s);
    }
    if (*stop_now) {
      summary.stopped_early = true;
      AbortAndDrain(rollouts, pending);
      break;
    }
  }
  summary.seconds = SecondsSince(run_start);
  return summary;
}

}  // namespace rlrt
