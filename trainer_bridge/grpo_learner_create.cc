// GrpoLearner's construction: the policy's weights (and, with BF16 weights,
// the split float32 master), the optimizer, the frozen reference, and the
// LoRA learner over a shared base.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "models/config/decoder_params.h"
#include "models/leaf_copy.h"
#include "trainer_bridge/grpo_learner.h"

namespace rlrt {
namespace {

// An F32 list with the names and shapes of `specs`.
std::vector<LeafSpec> AllF32(std::vector<LeafSpec> specs) {
  for (LeafSpec& spec : specs) spec.dtype = DType::kF32;
  return specs;
}

int64_t ReferenceTokens(const GrpoOptions& options) {
  return options.reference_micro_batch_tokens > 0
             ? options.reference_micro_batch_tokens
             : options.max_micro_batch_tokens;
}

// The policy's and the reference's model options (no adapter).
TrainableTransformerOptions ModelOptionsFor(const GrpoOptions& options) {
  return {.max_tokens = options.max_micro_batch_tokens,
          .sample_vocab = options.sample_vocab,
          .kv_dtype = options.kv_dtype,
          .bf16_backward_products = options.bf16_backward_products};
}

StatusOr<ParamLeaves> ConvertedCopy(const ParamLeaves& src,
                                    std::vector<LeafSpec> specs, Mesh* mesh) {
  ASSIGN_OR_RETURN(ParamLeaves copy, ParamLeaves::Allocate(std::move(specs)));
  RETURN_IF_ERROR(ConvertLeaves(src, copy, mesh));
  return copy;
}

StatusOr<ParamLeaves> CopyOf(const ParamLeaves& src, Mesh* mesh) {
  ASSIGN_OR_RETURN(ParamLeaves copy, ParamLeaves::Allocate(src.specs()));
  RETURN_IF_ERROR(CopyIntoLeaves(
      copy, [&](size_t i) { return src.data(i); }, mesh));
  return copy;
}

}  // namespace

GrpoLearner::GrpoLearner(const ModelConfig& config, const GrpoOptions& options,
                         Mesh* actor, Mesh* reference_mesh, ParamLeaves weights,
                         ParamLeaves grads)
    : config_(config),
      options_(options),
      actor_(actor),
      reference_mesh_(reference_mesh != nullptr ? reference_mesh : actor),
      weights_(std::move(weights)),
      grads_(std::move(grads)) {}

StatusOr<std::unique_ptr<GrpoLearner>> GrpoLearner::Create(
    const ModelConfig& config, const ParamLeaves& initial, Mesh* actor,
    Mesh* reference_mesh, const GrpoOptions& options) {
  if (options.num_iterations < 1)
    return InvalidArgumentError("num_iterations must be >= 1");
  if (options.reference_micro_batch_tokens < 0)
    return InvalidArgumentError(
        "reference_micro_batch_tokens must be >= 0 (0: the policy's)");
  if (!(options.temperature > 0))
    return InvalidArgumentError(
        "the learner's temperature must be > 0 (greedy rollouts have no "
        "policy gradient)");
  if (options.lora) {
    return CreateLora(config, initial, actor, reference_mesh, options);
  }
  const bool mixed = DecoderMatrixDType(initial.specs()) != DType::kF32;
  const bool split =
      mixed && std::ranges::all_of(initial.specs(), [](const LeafSpec& spec) {
        return spec.dtype == DType::kBF16 || spec.dtype == DType::kF32;
      });
  // The master weights are F32 whatever `initial` is (widening is exact);
  // a BF16 master is kept split, its high halves the compute copy.
  ASSIGN_OR_RETURN(
      ParamLeaves weights,
      split ? ParamLeaves::Allocate({})
            : ConvertedCopy(initial, AllF32(initial.specs()), actor));
  // Zeroed at the start of every step, so no need to copy anything in.
  // BF16 gradients are the layers' matrices. The embedding's and LM head's
  // stay float32: in BF16 the backward would sum them in a float32 table of
  // their size anyway (TrainableTransformer::Backward), and that scratch,
  // alive while the moments are, would cost more at the peak than it saves.
  std::vector<LeafSpec> grad_specs = AllF32(initial.specs());
  if (options.bf16_gradients &&
      DecoderMatrixDType(initial.specs()) == DType::kBF16) {
    for (size_t i = 0; i < grad_specs.size(); ++i) {
      const std::string& name = grad_specs[i].name;
      if (name == ModelParamName(ModelParam::kEmbedding) ||
          name == ModelParamName(ModelParam::kLmHead)) {
        continue;
      }
      grad_specs[i].dtype = initial.spec(i).dtype;
    }
  }
  ASSIGN_OR_RETURN(ParamLeaves grads, ParamLeaves::Allocate(grad_specs));
  std::unique_ptr<GrpoLearner> learner(
      new GrpoLearner(config, options, actor, reference_mesh,
                      std::move(weights), std::move(grads)));
  if (mixed) {
    // Mixed precision: the passes run on a copy in the initial dtype,
    // equal to `initial` now and rounded from the master after each step.
    ASSIGN_OR_RETURN(ParamLeaves copy, CopyOf(initial, actor));
    learner->compute_copy_ = std::make_unique<ParamLeaves>(std::move(copy));
  }
  if (split) {
    ASSIGN_OR_RETURN(SplitMaster master,
                     SplitMaster::Create(learner->compute_copy_.get()));
    learner->split_master_ = std::make_unique<SplitMaster>(std::move(master));
  }
  const TrainableTransformerOptions model_options = ModelOptionsFor(options);
  ASSIGN_OR_RETURN(learner->policy_,
                   TrainableTransformer::Create(config, learner->weights(),
                                                actor, model_options));
  if (options.loss.beta > 0) {
    ASSIGN_OR_RETURN(ParamLeaves ref,
                     CopyOf(initial, learner->reference_mesh_));
    learner->reference_weights_ = std::make_unique<ParamLeaves>(std::move(ref));
    TrainableTransformerOptions reference_options = model_options;
    reference_options.forward_only = true;  // it only scores
    reference_options.max_tokens = ReferenceTokens(options);
    ASSIGN_OR_RETURN(learner->reference_,
                     TrainableTransformer::Create(
                         config, *learner->reference_weights_,
                         learner->reference_mesh_, reference_options));
  }
  ASSIGN_OR_RETURN(AdamW optimizer,
                   split ? AdamW::Create(*learner->split_master_, options.adamw)
                         : AdamW::Create(learner->weights_, options.adamw));
  learner->optimizer_ = std::make_unique<AdamW>(std::move(optimizer));
  return learner;
}

StatusOr<std::unique_ptr<GrpoLearner>> GrpoLearner::CreateLora(
    const ModelConfig& config, const ParamLeaves& base, Mesh* actor,
    Mesh* reference_mesh, const GrpoOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<LoraAdapter> adapter,
                   LoraAdapter::Create(config, *options.lora));
  RETURN_IF_ERROR(adapter->InitLikePeft(options.lora_seed, actor));
  ASSIGN_OR_RETURN(ParamLeaves grads,
                   ParamLeaves::Allocate(adapter->leaves().specs()));
  ASSIGN_OR_RETURN(ParamLeaves no_master, ParamLeaves::Allocate({}));
  std::unique_ptr<GrpoLearner> learner(
      new GrpoLearner(config, options, actor, reference_mesh,
                      std::move(no_master), std::move(grads)));
  learner->adapter_ = std::move(adapter);
  TrainableTransformerOptions model_options = ModelOptionsFor(options);
  model_options.adapter = learner->adapter_.get();
  ASSIGN_OR_RETURN(learner->policy_, TrainableTransformer::Create(
                                         config, base, actor, model_options));
  if (options.loss.beta > 0) {
    // The reference is the base itself: a second workspace, no weights.
    model_options.adapter = nullptr;
    model_options.forward_only = true;
    model_options.max_tokens = ReferenceTokens(options);
    ASSIGN_OR_RETURN(
        learner->reference_,
        TrainableTransformer::Create(config, base, learner->reference_mesh_,
                                     model_options));
  }
  ASSIGN_OR_RETURN(AdamW optimizer,
                   AdamW::Create(learner->adapter_->leaves(), options.adamw));
  learner->optimizer_ = std::make_unique<AdamW>(std::move(optimizer));
  return learner;
}

}  // namespace rlrt
