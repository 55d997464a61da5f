#include "trainer_bridge/update_builder.h"

#include <cstring>
#include <string>

#include "models/leaf_checksum.h"
#include "models/leaf_copy.h"
#include "sampler/update_apply.h"

namespace rlrt {
namespace {

// True when the element's exponent bits are all ones (NaN or infinity), for
// each float format a leaf can hold.
bool NonFinite(DType dtype, const std::byte* p) {
  switch (dtype) {
    case DType::kF32: {
      uint32_t bits;
      std::memcpy(&bits, p, 4);
      return ((bits >> 23) & 0xff) == 0xff;
    }
    case DType::kBF16: {
      uint16_t bits;
      std::memcpy(&bits, p, 2);
      return ((bits >> 7) & 0xff) == 0xff;
    }
    case DType::kF16: {
      uint16_t bits;
      std::memcpy(&bits, p, 2);
      return ((bits >> 10) & 0x1f) == 0x1f;
    }
  }
  return false;
}

Status RefuseNonFinite(const ParamLeaves& leaves) {
  for (size_t i = 0; i < leaves.size(); ++i) {
    const DType dtype = leaves.spec(i).dtype;
    const size_t width = DTypeSize(dtype);
    const std::byte* data = leaves.data(i);
    const size_t n = leaves.bytes(i) / width;
    if (dtype == DType::kF32) {
      // The common case as one branch-free pass the compiler vectorises;
      // the element is looked up only when something is wrong.
      const uint32_t* bits = reinterpret_cast<const uint32_t*>(data);
      bool any = false;
      for (size_t k = 0; k < n; ++k) any |= ((bits[k] >> 23) & 0xff) == 0xff;
      if (!any) continue;
    }
    for (size_t k = 0; k < n; ++k) {
      if (NonFinite(dtype, data + k * width)) {
        return FailedPreconditionError(
            "leaf '" + leaves.spec(i).name + "' holds a non-finite value at " +
            "element " + std::to_string(k) + "; the weights are not sent");
      }
    }
  }
  return OkStatus();
}

}  // namespace

Status BuildUpdateParams(const ParamLeaves& leaves, uint64_t version,
                         const BuildOptions& options, Mesh* mesh,
                         proto::UpdateParams* out) {
  if (options.refuse_non_finite) RETURN_IF_ERROR(RefuseNonFinite(leaves));
  if (out->leaves_size() != static_cast<int>(leaves.size())) {
    out->clear_leaves();
    for (size_t i = 0; i < leaves.size(); ++i) out->add_leaves();
  }
  for (size_t i = 0; i < leaves.size(); ++i) {
    const LeafSpec& spec = leaves.spec(i);
    proto::Leaf* leaf = out->mutable_leaves(static_cast<int>(i));
    // Assignments below reuse existing capacity: after the first build of a
    // structure, none of them allocates.
    if (leaf->name() != spec.name) leaf->set_name(spec.name);
    leaf->mutable_shape()->Clear();
    for (int64_t d : spec.shape) leaf->add_shape(d);
    leaf->set_dtype(DTypeToProto(spec.dtype));
    std::string* data = leaf->mutable_data();
    if (data->size() != leaves.bytes(i)) data->resize(leaves.bytes(i));
  }
  RETURN_IF_ERROR(CopyLeafBytes(
      leaves, [&](size_t i) { return leaves.data(i); },
      [&](size_t i) {
        return reinterpret_cast<std::byte*>(
            out->mutable_leaves(static_cast<int>(i))->mutable_data()->data());
      },
      mesh));
  out->set_version(version);
  out->set_structure_fingerprint(leaves.fingerprint());
  if (options.include_content_hash) {
    out->set_expected_content_hash(ContentHash(leaves, mesh));
  } else {
    out->clear_expected_content_hash();
  }
  out->set_flush_cache(options.flush_cache);
  out->set_return_checksums(options.return_checksums);
  return OkStatus();
}

}  // namespace rlrt
