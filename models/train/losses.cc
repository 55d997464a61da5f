#include "models/train/losses.h"

#include <string>

namespace rlrt {

StatusOr<double> CrossEntropyLoss(std::span<const float> logprobs,
                                  std::span<float> dloss_dlogprob) {
  if (logprobs.size() != dloss_dlogprob.size()) {
    return InvalidArgumentError(
        "cross entropy: " + std::to_string(logprobs.size()) + " logprobs but " +
        std::to_string(dloss_dlogprob.size()) + " gradient slots");
  }
  if (logprobs.empty()) return 0.0;
  const double n = static_cast<double>(logprobs.size());
  double sum = 0;
  for (float lp : logprobs) sum += lp;
  const float grad = static_cast<float>(-1.0 / n);
  for (float& g : dloss_dlogprob) g = grad;
  return -sum / n;
}

}  // namespace rlrt
