// Losses over the per-target logprobs of TrainableTransformer::Forward. Each
// returns the loss and writes dLoss/dlogprob, which is what Backward takes.
// (Policy-gradient losses such as GRPO's are built the same way by the
// trainer: any loss of the logprobs only needs its dLoss/dlogprob.)
#ifndef RLRT_MODELS_TRAIN_LOSSES_H_
#define RLRT_MODELS_TRAIN_LOSSES_H_

#include <span>

#include "base/status.h"

namespace rlrt {

// Supervised fine-tuning: the mean negative log-likelihood of the targets,
//   L = -(1/N) sum_t logprobs[t],  dloss_dlogprob[t] = -1/N,
// summed in double. N = 0 gives L = 0. The spans must have equal sizes.
StatusOr<double> CrossEntropyLoss(std::span<const float> logprobs,
                                  std::span<float> dloss_dlogprob);

}  // namespace rlrt

#endif  // RLRT_MODELS_TRAIN_LOSSES_H_
