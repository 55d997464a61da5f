#include "trainer_bridge/optimizer.h"

#include <cmath>
#include <cstring>
#include <numbers>

#include "models/dtype.h"
#include "partition/parallel.h"

namespace rlrt {
namespace {

constexpr int64_t kBlockElements = int64_t{1} << 16;

const float* Floats(const ParamLeaves& l, size_t i) {
  return reinterpret_cast<const float*>(l.data(i));
}
float* Floats(ParamLeaves& l, size_t i) {
  return reinterpret_cast<float*>(l.data(i));
}

// One leaf's gradient, float32 or BF16 (a BF16 weight's gradient may be
// kept in BF16: TrainableTransformer::Backward), read as float32.
class GradLeaf {
 public:
  GradLeaf(const ParamLeaves& grads, size_t leaf)
      : data_(grads.data(leaf)),
        bf16_(grads.spec(leaf).dtype == DType::kBF16) {}
  float operator[](int64_t i) const {
    return bf16_ ? Bf16ToF32(static_cast<const uint16_t*>(data_)[i])
                 : static_cast<const float*>(data_)[i];
  }

 private:
  const void* data_;
  bool bf16_;
};

// Updates float32 values [begin, end) of p in place.
template <typename Update>
void UpdateFloats(float* p, int64_t begin, int64_t end, Update&& update) {
  for (int64_t i = begin; i < end; ++i) p[i] = update(i, p[i]);
}

}  // namespace

double LrSchedule::At(int64_t step) const {
  if (kind == Kind::kConstant) return peak;
  if (step < warmup_steps) return peak * double(step + 1) / (warmup_steps + 1);
  const int64_t decay_steps = std::max<int64_t>(total_steps - warmup_steps, 1);
  const double progress =
      std::min(1.0, double(step - warmup_steps) / double(decay_steps));
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return peak * (min_ratio + (1.0 - min_ratio) * cosine);
}

StatusOr<LrSchedule::Kind> ParseLrScheduleKind(const std::string& name) {
  if (name == "constant") return LrSchedule::Kind::kConstant;
  if (name == "cosine") return LrSchedule::Kind::kWarmupCosine;
  return InvalidArgumentError("unknown learning-rate schedule '" + name +
                              "' (expected constant or cosine)");
}

AdamW::AdamW(AdamWOptions options, ParamLeaves m, ParamLeaves v,
             std::vector<Block> blocks)
    : options_(options),
      m_(std::move(m)),
      v_(std::move(v)),
      blocks_(std::move(blocks)),
      partial_(blocks_.size()) {}

StatusOr<AdamW> AdamW::Create(const ParamLeaves& params,
                              const AdamWOptions& options) {
  return CreateFor(params.specs(), options);
}

StatusOr<AdamW> AdamW::Create(const SplitMaster& params,
                              const AdamWOptions& options) {
  return CreateFor(params.master_specs(), options);
}

StatusOr<AdamW> AdamW::CreateFor(const std::vector<LeafSpec>& specs,
                                 const AdamWOptions& options) {
  if (!(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 &&
        options.beta2 < 1 && options.epsilon > 0 && options.weight_decay >= 0 &&
        options.max_grad_norm >= 0)) {
    return InvalidArgumentError(
        "AdamW needs betas in [0, 1), epsilon > 0, weight_decay >= 0 and "
        "max_grad_norm >= 0");
  }
  std::vector<Block> blocks;
  for (size_t i = 0; i < specs.size(); ++i) {
    const LeafSpec& spec = specs[i];
    if (spec.dtype != DType::kF32)
      return InvalidArgumentError("AdamW needs F32 leaves; " + spec.name +
                                  " is not");
    const int64_t n = spec.NumElements();
    for (int64_t b = 0; b < n; b += kBlockElements)
      blocks.push_back(
          {i, b, std::min(n, b + kBlockElements), spec.shape.size() >= 2});
  }
  ASSIGN_OR_RETURN(ParamLeaves m, ParamLeaves::Allocate(specs));
  ASSIGN_OR_RETURN(ParamLeaves v, ParamLeaves::Allocate(specs));
  return AdamW(options, std::move(m), std::move(v), std::move(blocks));
}

Status AdamW::CheckStructure(const ParamLeaves& other, const char* what) const {
  if (other.fingerprint() != m_.fingerprint())
    return InvalidArgumentError(std::string(what) +
                                " do not have the optimizer's structure");
  return OkStatus();
}

Status AdamW::CheckGradients(const ParamLeaves& grads) const {
  if (grads.fingerprint() == m_.fingerprint()) return OkStatus();
  bool same = grads.size() == m_.size();
  for (size_t i = 0; same && i < grads.size(); ++i) {
    const LeafSpec& g = grads.spec(i);
    const LeafSpec& m = m_.spec(i);
    same = g.name == m.name && g.shape == m.shape &&
           (g.dtype == DType::kF32 || g.dtype == DType::kBF16);
  }
  if (same) return OkStatus();
  return InvalidArgumentError(
      "gradients do not have the optimizer's structure (F32 or BF16 leaves)");
}

StatusOr<double> AdamW::GradNorm(const ParamLeaves& grads, Mesh* mesh) const {
  RETURN_IF_ERROR(CheckGradients(grads));
  RETURN_IF_ERROR(ParallelForOrInline(
      mesh, static_cast<int64_t>(blocks_.size()), [&](const Shard& shard) {
        for (int64_t k = shard.begin; k < shard.end; ++k) {
          const Block& b = blocks_[k];
          const GradLeaf g(grads, b.leaf);
          double sum = 0;
          for (int64_t i = b.begin; i < b.end; ++i) {
            const double gi = g[i];
            sum += gi * gi;
          }
          partial_[k] = sum;
        }
        return OkStatus();
      }));
  double total = 0;
  for (double p : partial_) total += p;
  return std::sqrt(total);
}

template <typename UpdateBlock>
StatusOr<OptimizerStepStats> AdamW::StepWith(const ParamLeaves& grads,
                                             double learning_rate, Mesh* mesh,
                                             UpdateBlock&& update_block) {
  if (!(learning_rate >= 0) || !std::isfinite(learning_rate))
    return InvalidArgumentError("learning rate must be finite and >= 0");
  OptimizerStepStats stats;
  ASSIGN_OR_RETURN(stats.grad_norm, GradNorm(grads, mesh));
  if (!std::isfinite(stats.grad_norm)) {
    return FailedPreconditionError(
        "non-finite gradient norm; the step is refused and the weights are "
        "unchanged");
  }
  if (options_.max_grad_norm > 0 && stats.grad_norm > options_.max_grad_norm)
    stats.clip_scale = options_.max_grad_norm / stats.grad_norm;
  stats.learning_rate = learning_rate;
  const int64_t t = steps_ + 1;
  const double bias1 = 1.0 - std::pow(options_.beta1, double(t));
  const double bias2 = 1.0 - std::pow(options_.beta2, double(t));
  const float b1 = static_cast<float>(options_.beta1);
  const float b2 = static_cast<float>(options_.beta2);
  const double step_size = learning_rate / bias1;
  const double decay = learning_rate * options_.weight_decay;
  const float scale = static_cast<float>(stats.clip_scale);
  RETURN_IF_ERROR(ParallelForOrInline(
      mesh, static_cast<int64_t>(blocks_.size()), [&](const Shard& shard) {
        for (int64_t k = shard.begin; k < shard.end; ++k) {
          const Block& b = blocks_[k];
          const GradLeaf g(grads, b.leaf);
          float* m = Floats(m_, b.leaf);
          float* v = Floats(v_, b.leaf);
          update_block(b, [&](int64_t i, float p) {
            const float gi = g[i] * scale;
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            const double denom = std::sqrt(v[i] / bias2) + options_.epsilon;
            double updated = p;
            if (b.decay) updated -= decay * updated;
            updated -= step_size * m[i] / denom;
            return static_cast<float>(updated);
          });
        }
        return OkStatus();
      }));
  ++steps_;
  return stats;
}

StatusOr<OptimizerStepStats> AdamW::Step(ParamLeaves& params,
                                         const ParamLeaves& grads,
                                         double learning_rate, Mesh* mesh) {
  RETURN_IF_ERROR(CheckStructure(params, "parameters"));
  return StepWith(
      grads, learning_rate, mesh, [&](const Block& b, auto&& update) {
        UpdateFloats(Floats(params, b.leaf), b.begin, b.end, update);
      });
}

StatusOr<OptimizerStepStats> AdamW::Step(SplitMaster& params,
                                         const ParamLeaves& grads,
                                         double learning_rate, Mesh* mesh) {
  if (StructureFingerprint(params.master_specs()) != m_.fingerprint())
    return InvalidArgumentError(
        "parameters do not have the optimizer's structure");
  return StepWith(
      grads, learning_rate, mesh, [&](const Block& b, auto&& update) {
        uint16_t* low = params.low(b.leaf);
        if (low == nullptr) {  // an F32 leaf: the master value itself
          UpdateFloats(Floats(params.compute(), b.leaf), b.begin, b.end,
                       update);
          return;
        }
        uint16_t* high =
            reinterpret_cast<uint16_t*>(params.compute().data(b.leaf));
        for (int64_t i = b.begin; i < b.end; ++i) {
          const SplitF32 split =
              SplitFloat(update(i, JoinFloat(high[i], low[i])));
          high[i] = split.high;
          low[i] = split.low;
        }
      });
}

Status AdamW::Restore(const ParamLeaves& first_moment,
                      const ParamLeaves& second_moment, int64_t steps) {
  RETURN_IF_ERROR(CheckStructure(first_moment, "first moment"));
  RETURN_IF_ERROR(CheckStructure(second_moment, "second moment"));
  if (steps < 0) return InvalidArgumentError("negative optimizer step count");
  for (size_t i = 0; i < m_.size(); ++i) {
    std::memcpy(m_.data(i), first_moment.data(i), m_.bytes(i));
    std::memcpy(v_.data(i), second_moment.data(i), v_.bytes(i));
  }
  steps_ = steps;
  return OkStatus();
}

}  // namespace rlrt
