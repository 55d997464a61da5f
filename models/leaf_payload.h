// A leaf list's payload: the concatenation of every leaf's bytes in list
// order, without the arena's alignment padding. This is how a weight update
// larger than one message travels: as byte ranges of the payload, which may
// start and end inside a leaf (one leaf can outgrow any chunk size).
#ifndef RLRT_MODELS_LEAF_PAYLOAD_H_
#define RLRT_MODELS_LEAF_PAYLOAD_H_

#include <cstddef>

#include "base/function_ref.h"
#include "base/status.h"
#include "models/param_leaves.h"

namespace rlrt {

// Calls fn(leaf, leaf_offset, range_offset, size) for each leaf's share of
// the payload bytes [begin, begin + size), in order: `size` bytes at
// `leaf_offset` within the leaf correspond to the bytes at `range_offset`
// within the range. OutOfRange when the range passes the payload's end
// (nothing is called then).
using PayloadSpanFn = FunctionRef<void(size_t leaf, size_t leaf_offset,
                                       size_t range_offset, size_t size)>;
Status ForEachPayloadSpan(const ParamLeaves& layout, size_t begin, size_t size,
                          PayloadSpanFn fn);

}  // namespace rlrt

#endif  // RLRT_MODELS_LEAF_PAYLOAD_H_
