// Copying whole leaf lists between buffers laid out like a ParamLeaves, split
// across a mesh's workers: each worker takes one contiguous range of the
// concatenated bytes, so every worker moves the same amount and large
// memcpys stay large (which keeps glibc on its streaming-store path).
#ifndef RLRT_MODELS_LEAF_COPY_H_
#define RLRT_MODELS_LEAF_COPY_H_

#include <cstddef>

#include "base/function_ref.h"
#include "base/status.h"
#include "models/leaf_checksum.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"

namespace rlrt {

// Destination of leaf i's bytes.
using MutableLeafDataFn = FunctionRef<std::byte*(size_t leaf)>;

// Splits the concatenated bytes of `layout`'s leaves into one contiguous
// range per worker, with boundaries on 4 KiB (so no two workers write one
// page and no element is split), and calls fn(leaf, offset, size) on that
// worker for each leaf's share of its range, in order.
using LeafPieceFn = FunctionRef<void(size_t leaf, size_t offset, size_t size)>;
Status ForEachLeafPiece(const ParamLeaves& layout, Mesh* mesh, LeafPieceFn fn);

// Calls fn(chunk) for every chunk of `layout` (ParamLeaves::chunk: at most
// kLeafChunkBytes, never spanning leaves, starting at a multiple of
// kLeafChunkBytes within its leaf, so no element is ever split whatever
// the leaves' dtypes), the chunks shared out among the mesh's workers.
using LeafChunkFn = FunctionRef<void(const LeafChunk& chunk)>;
Status ForEachLeafChunk(const ParamLeaves& layout, Mesh* mesh, LeafChunkFn fn);

// Copies `from` into `to`, two lists with the same leaf names and shapes
// whose dtypes may differ leaf by leaf: same-dtype leaves are copied,
// others converted (widened exactly, or rounded to nearest even into BF16).
// This is how a trainer's F32 master weights become its BF16 compute copy.
// Nothing is written when the structures differ.
Status ConvertLeaves(const ParamLeaves& from, ParamLeaves& to, Mesh* mesh);

// Copies every leaf of `layout` from src(i) to dst(i). Allocates nothing.
Status CopyLeafBytes(const ParamLeaves& layout, LeafDataFn src,
                     MutableLeafDataFn dst, Mesh* mesh);

// Copies src(i) into the list's own leaves.
inline Status CopyIntoLeaves(ParamLeaves& target, LeafDataFn src, Mesh* mesh) {
  return CopyLeafBytes(
      target, src, [&](size_t i) { return target.data(i); }, mesh);
}

}  // namespace rlrt

#endif  // RLRT_MODELS_LEAF_COPY_H_
