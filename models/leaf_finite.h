// Finding NaN and infinity in leaf data, for the trainer before it sends
// weights and the sampler before it applies them: a non-finite weight makes
// every later logit NaN, and the error would surface far from its cause.
#ifndef RLRT_MODELS_LEAF_FINITE_H_
#define RLRT_MODELS_LEAF_FINITE_H_

#include <cstdint>
#include <optional>

#include "models/leaf_checksum.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

struct NonFiniteElement {
  size_t leaf = 0;
  int64_t element = 0;
};

// The first NaN or infinity (in leaf order, then element order) in data laid
// out like `layout` (F32, BF16 and F16 leaves), or nothing. The scan of a
// large leaf is split across the mesh (inline when null); allocates nothing.
std::optional<NonFiniteElement> FindNonFinite(const ParamLeaves& layout,
                                              LeafDataFn data, Mesh* mesh);
std::optional<NonFiniteElement> FindNonFinite(const ParamLeaves& leaves,
                                              Mesh* mesh = nullptr);

// Whether any of the `count` elements of `dtype` at `data` (which may be
// unaligned) is NaN or infinite; and the index of the first one, or -1.
bool AnyNonFinite(DType dtype, const std::byte* data, int64_t count);
int64_t FirstNonFinite(DType dtype, const std::byte* data, int64_t count);

}  // namespace rlrt

#endif  // RLRT_MODELS_LEAF_FINITE_H_
