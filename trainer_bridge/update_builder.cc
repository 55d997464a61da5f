#include "trainer_bridge/update_builder.h"

#include <cstring>
#include <string>

#include "models/leaf_checksum.h"
#include "models/leaf_copy.h"
#include "models/leaf_finite.h"
#include "models/leaf_scan.h"
#include "sampler/update_apply.h"

namespace rlrt {

Status RefuseNonFinite(const ParamLeaves& leaves, const NonFiniteElement& bad) {
  return FailedPreconditionError("leaf '" + leaves.spec(bad.leaf).name +
                                 "' holds a non-finite value at element " +
                                 std::to_string(bad.element) +
                                 "; the weights are not sent");
}

Status BuildUpdateParams(const ParamLeaves& leaves, uint64_t version,
                         const BuildOptions& options, Mesh* mesh,
                         proto::UpdateParams* out) {
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
  // One pass: each chunk is copied, then hashed and checked while it is in
  // cache (models/leaf_scan.h).
  ScanOptions checks;
  checks.hash = options.include_content_hash;
  checks.find_non_finite = options.refuse_non_finite;
  ASSIGN_OR_RETURN(const LeafScan scan,
                   CopyAndScanLeaves(
                       leaves, [&](size_t i) { return leaves.data(i); },
                       [&](size_t i) {
                         return reinterpret_cast<std::byte*>(
                             out->mutable_leaves(static_cast<int>(i))
                                 ->mutable_data()
                                 ->data());
                       },
                       checks, mesh));
  if (scan.non_finite) {
    // Emptied so it cannot be sent by mistake (the buffers are lost, but a
    // refusal ends the run).
    out->clear_leaves();
    return RefuseNonFinite(leaves, *scan.non_finite);
  }
  out->set_version(version);
  out->set_structure_fingerprint(leaves.fingerprint());
  if (options.include_content_hash) {
    out->set_expected_content_hash(scan.content_hash);
  } else {
    out->clear_expected_content_hash();
  }
  out->set_flush_cache(options.flush_cache);
  out->set_lora_name(options.lora_name);
  out->set_lora_config_json(options.lora_config_json);
  out->set_return_checksums(options.return_checksums);
  return OkStatus();
}

}  // namespace rlrt
