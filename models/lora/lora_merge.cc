#include "models/lora/lora_merge.h"

#include <string>
#include <vector>

#include "models/dtype.h"

namespace rlrt {

Status MergeLoraInto(const LoraAdapter& adapter, const ModelConfig& model,
                     ParamLeaves& base) {
  if (adapter.base_shape_fingerprint() != LoraBaseShapeFingerprint(model)) {
    return InvalidArgumentError(
        "the adapter was made for a base of other layer count or shapes");
  }
  // Resolve every target leaf first, so a bad base changes nothing.
  struct Target {
    size_t leaf;
    LoraFactors factors;
    int64_t out, in;
  };
  std::vector<Target> targets;
  for (int64_t l = 0; l < model.num_hidden_layers; ++l) {
    for (LayerParam p : kLoraModules) {
      const LoraFactors f = adapter.Factors(l, p);
      if (f.rank == 0) continue;
      const std::string name = LayerParamName(l, p);
      const std::optional<size_t> leaf = base.Find(name);
      const auto [out, in] = ProjectionShape(model, p);
      if (!leaf || base.spec(*leaf).shape != std::vector<int64_t>{out, in} ||
          base.spec(*leaf).dtype == DType::kF16) {
        return InvalidArgumentError(
            "the base has no F32 or BF16 leaf '" + name + "' of shape [" +
            std::to_string(out) + ", " + std::to_string(in) + "]");
      }
      targets.push_back({*leaf, f, out, in});
    }
  }
  for (const Target& t : targets) {
    std::byte* w = base.data(t.leaf);
    const DType dtype = base.spec(t.leaf).dtype;
    const int64_t r = t.factors.rank;
    for (int64_t o = 0; o < t.out; ++o) {
      for (int64_t i = 0; i < t.in; ++i) {
        double delta = 0;
        for (int64_t k = 0; k < r; ++k) {
          delta += static_cast<double>(t.factors.b[o * r + k]) *
                   t.factors.a[k * t.in + i];
        }
        const size_t index = static_cast<size_t>(o * t.in + i);
        const double merged =
            LoadAsF32(w, dtype, index) + t.factors.scale * delta;
        StoreFromF32(w, dtype, index, static_cast<float>(merged));
      }
    }
  }
  base.set_version(base.version() + 1);
  return OkStatus();
}

}  // namespace rlrt
