#include "trainer_bridge/weight_sync.h"

#include <string>

#include "base/format.h"
#include "base/timing.h"
#include "models/leaf_scan.h"
#include "models/lora/lora_config.h"
#include "trainer_bridge/update_builder.h"

namespace rlrt {
WeightSync::WeightSync(SamplerEngine* engine, Mesh* trainer_mesh, bool verify,
                       bool flush_cache)
    : engine_(engine),
      trainer_mesh_(trainer_mesh),
      verify_(verify),
      flush_cache_(flush_cache) {}

void WeightSync::RecordApplied(const ApplyReport& applied,
                               SteadyClock::time_point apply_start,
                               SyncReport& report) const {
  report.apply_ms = MillisecondsSince(apply_start);
  report.version = applied.version;
  report.bytes = applied.bytes_copied;
  report.stall_ms = engine_->Stats().last_update_stall_ms;
}

StatusOr<SyncReport> WeightSync::Push(const ParamLeaves& weights,
                                      uint64_t version) {
  SyncReport report;
  const SteadyClock::time_point start = SteadyClock::now();
  ASSIGN_OR_RETURN(const LeafScan scan,
                   ScanLeaves(
                       weights, [&](size_t i) { return weights.data(i); },
                       {.hash = true, .find_non_finite = true}, trainer_mesh_));
  if (scan.non_finite) return RefuseNonFinite(weights, *scan.non_finite);
  report.content_hash = scan.content_hash;
  report.build_ms = MillisecondsSince(start);

  const SteadyClock::time_point apply_start = SteadyClock::now();
  // Checked just above, and this thread keeps the leaves still until the
  // engine is done: the engine need not read them before copying.
  StatusOr<ApplyReport> applied = engine_->UpdateFromLeaves(
      weights, version, flush_cache_, VersionRule::kNewer,
      {.payload_prechecked = true, .expected_content_hash = scan.content_hash});
  if (!applied.ok()) return Refused(applied.status(), "", version);
  RecordApplied(*applied, apply_start, report);
  // The engine hashed its leaves as it wrote them and compared the hash with
  // ours (a mismatch is refused above): nothing is left to read back.
  report.verify_ms = 0;
  report.total_ms = MillisecondsSince(start);
  return report;
}

StatusOr<SyncReport> WeightSync::PushAdapter(const LoraAdapter& adapter,
                                             std::string_view name,
                                             uint64_t version) {
  if (name.empty()) return InvalidArgumentError("an adapter push needs a name");
  BuildOptions build;
  build.lora_name = std::string(name);
  build.lora_config_json = LoraConfigToJson(adapter.config());
  return SendAdapter(adapter.leaves(), version, std::move(build));
}

Status WeightSync::Refused(const Status& why, const std::string& lora_name,
                           uint64_t version) const {
  StatusOr<uint64_t> adapter_version = engine_->AdapterVersion(lora_name);
  const uint64_t kept = lora_name.empty()
                            ? engine_->Stats().weight_version
                            : (adapter_version.ok() ? *adapter_version : 0);
  return Status(
      why.code(),
      std::string(lora_name.empty() ? "weight sync"
                                    : "sync of adapter '" + lora_name + "'") +
          " to version " + std::to_string(version) +
          " refused by the sampler, which keeps version " +
          std::to_string(kept) + ": " + std::string(why.message()));
}

StatusOr<SyncReport> WeightSync::SendAdapter(const ParamLeaves& weights,
                                             uint64_t version,
                                             BuildOptions build) {
  SyncReport report;
  const SteadyClock::time_point start = SteadyClock::now();
  build.include_content_hash = true;
  RETURN_IF_ERROR(
      BuildUpdateParams(weights, version, build, trainer_mesh_, &message_));
  report.content_hash = message_.expected_content_hash();
  report.build_ms = MillisecondsSince(start);

  const SteadyClock::time_point apply_start = SteadyClock::now();
  // The build hashed and checked this payload as it wrote it; the engine
  // need not read it again before copying (ApplyOptions).
  StatusOr<ApplyReport> applied =
      engine_->UpdateParams(message_, {.payload_prechecked = true});
  if (!applied.ok()) return Refused(applied.status(), build.lora_name, version);
  RecordApplied(*applied, apply_start, report);

  if (verify_) {
    // The sampler hashed its leaves as it wrote them (ApplyReport): no
    // second read.
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
