// The RL loop's metrics as JSON objects (one JSON line per step in the
// demo's output and --metrics_out).
#ifndef RLRT_TRAINER_BRIDGE_RL_METRICS_JSON_H_
#define RLRT_TRAINER_BRIDGE_RL_METRICS_JSON_H_

#include <nlohmann/json.hpp>

#include "trainer_bridge/grpo_learner.h"
#include "trainer_bridge/rl_loop.h"

namespace rlrt {

// phase "grpo_step": reward, advantage, length, loss, KL, clip, gradient,
// learning-rate, throughput, timing, version and sync fields.
nlohmann::json RlStepJson(const RlStepMetrics& m);
// phase "sft_step".
nlohmann::json SftStepJson(int64_t step, const SftStepMetrics& m);
// The sync fields alone (also used for the initial weights_swapped line).
nlohmann::json SyncJson(const SyncReport& r);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_RL_METRICS_JSON_H_
