// AdamW with decoupled weight decay and global gradient-norm clipping, over
// a leaf list, sharded across a mesh; and the learning-rate schedules.
//
// The work is split into fixed blocks of each leaf, the same for any number
// of workers, and the squared norm is summed per block in double and then
// over blocks in order, so results are bit-identical for any worker count.
// Weight decay applies to matrices (rank >= 2: projections, embeddings) and
// not to norms and biases, as common practice (and Hugging Face's Trainer)
// does.
#ifndef RLRT_TRAINER_BRIDGE_OPTIMIZER_H_
#define RLRT_TRAINER_BRIDGE_OPTIMIZER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "models/param_leaves.h"
#include "partition/mesh.h"
#include "trainer_bridge/split_master.h"

namespace rlrt {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.0;
  // Clip the global gradient norm to this; 0 = off.
  double max_grad_norm = 1.0;
};

struct LrSchedule {
  enum class Kind { kConstant, kWarmupCosine };
  Kind kind = Kind::kConstant;
  double peak = 1e-6;
  int64_t warmup_steps = 0;  // Linear from 0 to peak over these steps.
  int64_t total_steps = 1;   // Cosine from peak down to min_ratio * peak.
  double min_ratio = 0.0;
  // The rate for optimizer step `step` (0-based).
  double At(int64_t step) const;
};
StatusOr<LrSchedule::Kind> ParseLrScheduleKind(const std::string& name);

struct OptimizerStepStats {
  double grad_norm = 0;  // Before clipping.
  double clip_scale = 1;
  double learning_rate = 0;
};

class AdamW {
 public:
  // Moments get the structure of `params` (F32 leaves only).
  static StatusOr<AdamW> Create(const ParamLeaves& params,
                                const AdamWOptions& options);
  // Moments of the master's structure (master_specs()).
  static StatusOr<AdamW> Create(const SplitMaster& params,
                                const AdamWOptions& options);

  // Gradients have the moments' names and shapes; each leaf may be F32 or
  // BF16 (read as float32; the arithmetic is the same either way).
  // The global L2 norm of `grads` (bit-identical for any worker count).
  StatusOr<double> GradNorm(const ParamLeaves& grads, Mesh* mesh) const;

  // One step. A non-finite gradient norm is refused (FailedPrecondition)
  // and nothing changes, so no NaN ever reaches the weights.
  StatusOr<OptimizerStepStats> Step(ParamLeaves& params,
                                    const ParamLeaves& grads,
                                    double learning_rate, Mesh* mesh);
  // The same on a split master: the same float32 arithmetic, each value
  // read from and written back to its two halves.
  StatusOr<OptimizerStepStats> Step(SplitMaster& params,
                                    const ParamLeaves& grads,
                                    double learning_rate, Mesh* mesh);

  // Resumes from saved state: moments of this optimizer's structure and the
  // number of steps taken. Nothing changes on error.
  Status Restore(const ParamLeaves& first_moment,
                 const ParamLeaves& second_moment, int64_t steps);

  int64_t steps() const { return steps_; }
  ParamLeaves& first_moment() { return m_; }
  const ParamLeaves& first_moment() const { return m_; }
  const ParamLeaves& second_moment() const { return v_; }
  ParamLeaves& second_moment() { return v_; }

 private:
  struct Block {
    size_t leaf;
    int64_t begin;
    int64_t end;
    bool decay;
  };
  AdamW(AdamWOptions options, ParamLeaves m, ParamLeaves v,
        std::vector<Block> blocks);
  static StatusOr<AdamW> CreateFor(const std::vector<LeafSpec>& specs,
                                   const AdamWOptions& options);
  Status CheckStructure(const ParamLeaves& other, const char* what) const;
  // The moments' names and shapes, each leaf F32 or BF16.
  Status CheckGradients(const ParamLeaves& grads) const;
  // Clips and updates; `update_block(block, fn)` runs fn(p) on the block's
  // parameters as float32, in place (the caller's storage round-trips them).
  template <typename UpdateBlock>
  StatusOr<OptimizerStepStats> StepWith(const ParamLeaves& grads,
                                        double learning_rate, Mesh* mesh,
                                        UpdateBlock&& update_block);

  AdamWOptions options_;
  ParamLeaves m_;
  ParamLeaves v_;
  std::vector<Block> blocks_;
  mutable std::vector<double> partial_;  // One squared sum per block.
  int64_t steps_ = 0;
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_OPTIMIZER_H_
