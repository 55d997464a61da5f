#include "trainer_bridge/weight_sync.h"

#include <chrono>
#include <cstdio>
#include <string>

#include "base/format.h"
#include "base/timing.h"
#include "trainer_bridge/update_builder.h"

namespace rlrt {
namespace {}  // namespace

WeightSync::WeightSync(SamplerEngine* engine, Mesh* trainer_mesh, bool verify,
                       bool flush_cache)
    : engine_(engine),
      trainer_mesh_(trainer_mesh),
      verify_(verify),
      flush_cache_(flush_cache) {}

StatusOr<SyncReport> WeightSync::Push(const ParamLeaves& weights,
                                      uint64_t version) {
  SyncReport report;
  const SteadyClock::time_point start = SteadyClock::now();
  BuildOptions build;
  build.include_content_hash = true;
  build.flush_cache = flush_cache_;
  RETURN_IF_ERROR(
      BuildUpdateParams(weights, version, build, trainer_mesh_, &message_));
  report.content_hash = message_.expected_content_hash();
  report.build_ms = MillisecondsSince(start);

  const SteadyClock::time_point apply_start = SteadyClock::now();
  // The build hashed and checked this payload as it wrote it; the engine
  // need not read it again before copying (ApplyOptions).
  StatusOr<ApplyReport> applied =
      engine_->UpdateParams(message_, {.payload_prechecked = true});
  if (!applied.ok()) {
    return Status(applied.status().code(),
                  "weight sync to version " + std::to_string(version) +
                      " refused by the sampler, which keeps version " +
                      std::to_string(engine_->Stats().weight_version) + ": " +
                      std::string(applied.status().message()));
  }
  report.apply_ms = MillisecondsSince(apply_start);
  report.version = applied->version;
  report.bytes = applied->bytes_copied;
  report.stall_ms = engine_->Stats().last_update_stall_ms;

  if (verify_) {
    // The sampler hashed its leaves as it wrote them (ApplyReport): no
    // second read of 2.4 GB on a real model.
    report.verify_ms = 0;
    if (applied->content_hash != report.content_hash) {
      return DataLossError(
          "after the sync to version " + std::to_string(version) +
          " the sampler's content hash " + HexU64(applied->content_hash) +
          " differs from the trainer's " + HexU64(report.content_hash));
    }
  }
  report.total_ms = MillisecondsSince(start);
  return report;
}

}  // namespace rlrt
