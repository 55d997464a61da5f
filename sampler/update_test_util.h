// Builds an UpdateParams field by field from a leaf list, independently of
// trainer_bridge's builder, so the apply tests do not trust the code they
// would otherwise be testing against.
#ifndef RLRT_SAMPLER_UPDATE_TEST_UTIL_H_
#define RLRT_SAMPLER_UPDATE_TEST_UTIL_H_

#include <cstdint>

#include "models/param_leaves.h"
#include "proto/update_params.pb.h"

namespace rlrt::testing {

inline proto::UpdateParams HandBuiltUpdate(const ParamLeaves& src,
                                           uint64_t version) {
  proto::UpdateParams u;
  u.set_version(version);
  u.set_structure_fingerprint(src.fingerprint());
  for (size_t i = 0; i < src.size(); ++i) {
    proto::Leaf* leaf = u.add_leaves();
    leaf->set_name(src.spec(i).name);
    for (int64_t d : src.spec(i).shape) leaf->add_shape(d);
    leaf->set_dtype(src.spec(i).dtype == DType::kF32    ? proto::F32
                    : src.spec(i).dtype == DType::kBF16 ? proto::BF16
                                                        : proto::F16);
    leaf->set_data(reinterpret_cast<const char*>(src.data(i)), src.bytes(i));
  }
  return u;
}

}  // namespace rlrt::testing

#endif  // RLRT_SAMPLER_UPDATE_TEST_UTIL_H_
