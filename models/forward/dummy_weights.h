// load_format=dummy: seeded random weights at the scale real checkpoints
// have (matrices N(0, 0.02)-like, norms 1, biases 0), so a dummy model runs
// real arithmetic with sane activations. Costs one write of the weights.
#ifndef RLRT_MODELS_FORWARD_DUMMY_WEIGHTS_H_
#define RLRT_MODELS_FORWARD_DUMMY_WEIGHTS_H_

#include <cstdint>

#include "base/status.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

Status InitDummyWeights(ParamLeaves& leaves, uint64_t seed, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_FORWARD_DUMMY_WEIGHTS_H_
