#include "trainer_bridge/rl_metrics_json.h"

#include <cstdio>
#include <string>

#include "base/format.h"

namespace rlrt {
namespace {

double PerSecond(double count, double seconds) {
  return seconds > 0 ? count / seconds : 0.0;
}

}  // namespace

nlohmann::json SyncJson(const SyncReport& r) {
  return {{"version", r.version},
          {"bytes", r.bytes},
          {"content_hash", HexU64(r.content_hash)},
          {"build_ms", r.build_ms},
          {"apply_ms", r.apply_ms},
          {"stall_ms", r.stall_ms},
          {"verify_ms", r.verify_ms},
          {"total_ms", r.total_ms}};
}

nlohmann::json RlStepJson(const RlStepMetrics& m) {
  const GrpoStepMetrics& g = m.grpo;
  nlohmann::json rewards = nlohmann::json::object();
  for (const auto& [name, value] : m.reward_parts) rewards[name] = value;
  nlohmann::json line = {
      {"phase", "grpo_step"},
      {"step", m.step},
      {"reward_mean", g.reward_mean},
      {"reward_std", g.reward_std},
      {"rewards", rewards},
      {"advantage_mean", g.advantage_mean},
      {"advantage_std", g.advantage_std},
      {"completion_length_mean", g.completion_length_mean},
      {"completion_length_max", g.completion_length_max},
      {"truncated_fraction", g.truncated_fraction},
      {"loss", g.loss},
      {"kl", g.kl},
      {"clip_fraction", g.clip_fraction},
      {"dual_clip_fraction", g.dual_clip_fraction},
      {"tis_weight_mean", g.tis_weight_mean},
      {"entropy", g.entropy_mean},
      {"tis_capped_fraction", g.tis_capped_fraction},
      {"ratio_mean", g.ratio_mean},
      {"ratio_min", g.ratio_min},
      {"ratio_max", g.ratio_max},
      {"logprob_mismatch_max", g.logprob_mismatch_max},
      {"logprob_mismatch_mean", g.logprob_mismatch_mean},
      {"grad_norm", g.grad_norm},
      {"learning_rate", g.learning_rate},
      {"rollout_tokens", m.rollout_tokens},
      {"train_tokens", g.train_tokens},
      {"rollout_tokens_per_s", PerSecond(m.rollout_tokens, m.rollout_seconds)},
      {"train_tokens_per_s", PerSecond(g.train_tokens, g.train_seconds)},
      {"rollout_seconds", m.rollout_seconds},
      {"train_seconds", g.train_seconds},
      {"reference_seconds", g.reference_seconds},
      {"sync_seconds", m.sync_seconds},
      {"wait_seconds", m.wait_seconds},
      {"step_seconds", m.step_seconds},
      {"sampled_versions", {m.sampled_version_min, m.sampled_version_max}},
      {"policy_version", m.policy_version},
      {"version_lag", m.version_lag},
  };
  line["sampling_rounds"] = m.sampling_rounds;
  line["groups_dropped"] = m.groups_dropped;
  line["groups_padded"] = m.groups_padded;
  if (m.synced) line["sync"] = SyncJson(m.sync);
  if (m.ranks > 1) {
    line["ranks"] = m.ranks;
    line["gradient_reduce_seconds"] = m.grpo.gradient_reduce_seconds;
    line["replica_weights_hash"] = HexU64(m.replica_weights_hash);
  }
  return line;
}

nlohmann::json SftStepJson(int64_t step, const SftStepMetrics& m) {
  return {{"phase", "sft_step"},
          {"step", step},
          {"loss", m.loss},
          {"grad_norm", m.grad_norm},
          {"learning_rate", m.learning_rate},
          {"tokens", m.tokens},
          {"seconds", m.seconds},
          {"tokens_per_s", PerSecond(m.tokens, m.seconds)}};
}

}  // namespace rlrt
