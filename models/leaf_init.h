// Seeded initialisation and perturbation of leaf lists. Random streams are
// keyed by (seed, leaf, chunk), so results are identical for any number of
// workers and any machine, and two lists of the same structure initialised
// with the same seed hold the same bytes.
#ifndef RLRT_MODELS_LEAF_INIT_H_
#define RLRT_MODELS_LEAF_INIT_H_

#include <cstdint>

#include "base/function_ref.h"
#include "base/status.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

// How one leaf is filled by dummy initialisation.
struct DummyInit {
  enum class Kind { kUniform, kConstant };
  Kind kind = Kind::kUniform;
  // kUniform: zero-mean uniform noise with this standard deviation.
  // kConstant: every element equals `value`.
  float stddev = 0.02f;
  float value = 0.0f;
};

// Fills every leaf as `rule` says (default: uniform with stddev 0.02).
// mesh may be null (runs inline).
Status FillDummy(ParamLeaves& leaves, uint64_t seed, Mesh* mesh,
                 FunctionRef<DummyInit(const LeafSpec&)> rule);
Status FillDummy(ParamLeaves& leaves, uint64_t seed, Mesh* mesh = nullptr);

// Adds Gaussian noise N(0, scale^2), seeded by `seed`, to every element of the
// first `num_leaves` leaves (all leaves when num_leaves exceeds the count).
// Errors: num_leaves < 0, scale negative or not finite. Leaves other than F32
// are converted to F32, perturbed and rounded back.
Status Perturb(ParamLeaves& leaves, uint64_t seed, double scale,
               int64_t num_leaves, Mesh* mesh = nullptr);

}  // namespace rlrt

#endif  // RLRT_MODELS_LEAF_INIT_H_
