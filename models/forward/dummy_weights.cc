#include "models/forward/dummy_weights.h"

#include <string_view>

#include "models/leaf_init.h"

namespace rlrt {

Status InitDummyWeights(ParamLeaves& leaves, uint64_t seed, Mesh* mesh) {
  return FillDummy(leaves, seed, mesh, [](const LeafSpec& spec) {
    const std::string_view name = spec.name;
    DummyInit rule;
    if (name.ends_with("norm.weight")) {
      rule.kind = DummyInit::Kind::kConstant;
      rule.value = 1.0f;
    } else if (name.ends_with(".bias")) {
      rule.kind = DummyInit::Kind::kConstant;
      rule.value = 0.0f;
    }
    return rule;
  });
}

}  // namespace rlrt
