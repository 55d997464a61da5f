// One pass over leaf data, chunk by chunk (the chunks of leaf_checksum.h),
// doing everything a weight sync needs while each chunk is in cache:
// copying it, hashing it, looking for NaN and infinity. A sync of
// Qwen3-0.6B moves 2.4 GB in float32; reading it once per side instead of
// three times is most of what the sync costs.
#ifndef RLRT_MODELS_LEAF_SCAN_H_
#define RLRT_MODELS_LEAF_SCAN_H_

#include <cstdint>
#include <optional>

#include "base/status.h"
#include "models/leaf_checksum.h"
#include "models/leaf_copy.h"
#include "models/leaf_finite.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

struct ScanOptions {
  bool hash = true;             // ContentHash of the data.
  bool find_non_finite = true;  // The first NaN or infinity.
};

struct LeafScan {
  uint64_t content_hash = 0;  // Equal to ContentHash(); with options.hash.
  // The first NaN or infinity in leaf, then element, order.
  std::optional<NonFiniteElement> non_finite;
};

// Over `data` laid out like `layout`. Split across the mesh's workers (inline
// when null); allocates nothing.
StatusOr<LeafScan> ScanLeaves(const ParamLeaves& layout, LeafDataFn data,
                              const ScanOptions& options, Mesh* mesh);

// Copies src(i) to dst(i) for every leaf, scanning each chunk as it is
// copied (so the result describes the copy). Everything is copied even when
// a non-finite value is found.
StatusOr<LeafScan> CopyAndScanLeaves(const ParamLeaves& layout, LeafDataFn src,
                                     MutableLeafDataFn dst,
                                     const ScanOptions& options, Mesh* mesh);

}  // namespace rlrt

#endif  // RLRT_MODELS_LEAF_SCAN_H_
