// Reward shaping the RL loop applies on top of a task's rewards.
#ifndef RLRT_TRAINER_BRIDGE_REWARD_SHAPING_H_
#define RLRT_TRAINER_BRIDGE_REWARD_SHAPING_H_

#include <cstdint>

namespace rlrt {

// DAPO's overlong reward shaping: 0 for a completion of up to
// max_length - buffer tokens, then falling linearly to -1 at max_length
// (and -1 beyond), so that completions close to the limit lose reward
// before they are cut off. buffer <= 0 turns it off (0 everywhere).
double OverlongPenalty(int64_t length, int64_t max_length, int64_t buffer);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_REWARD_SHAPING_H_
