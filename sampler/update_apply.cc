#include "sampler/update_apply.h"

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "base/format.h"
#include "models/leaf_copy.h"
#include "models/leaf_finite.h"
#include "models/leaf_scan.h"

namespace rlrt {
namespace {

std::string LeafLabel(size_t i, std::string_view name) {
  return "leaf " + std::to_string(i) + " '" + std::string(name) + "'";
}

// The message's structure as specs, for the diff in an error message.
std::vector<LeafSpec> SpecsOf(const proto::UpdateParams& update) {
  std::vector<LeafSpec> specs;
  specs.reserve(update.leaves_size());
  for (const proto::Leaf& leaf : update.leaves()) {
    StatusOr<DType> dtype = DTypeFromProto(leaf.dtype());
    specs.push_back(LeafSpec{leaf.name(),
                             {leaf.shape().begin(), leaf.shape().end()},
                             dtype.ok() ? *dtype : DType::kF32});
  }
  return specs;
}

Status CheckLeaf(size_t i, const proto::Leaf& leaf, const LeafSpec& expected,
                 size_t expected_bytes) {
  if (leaf.name() != expected.name) {
    return InvalidArgumentError(LeafLabel(i, leaf.name()) +
                                ": expected leaf '" + expected.name +
                                "' at this position");
  }
  StatusOr<DType> dtype = DTypeFromProto(leaf.dtype());
  if (!dtype.ok()) return dtype.status().WithContext(LeafLabel(i, leaf.name()));
  if (*dtype != expected.dtype) {
    return InvalidArgumentError(LeafLabel(i, leaf.name()) + ": dtype " +
                                std::string(DTypeName(*dtype)) +
                                " != expected " +
                                std::string(DTypeName(expected.dtype)));
  }
  const auto& shape = leaf.shape();
  if (!std::equal(shape.begin(), shape.end(), expected.shape.begin(),
                  expected.shape.end())) {
    return InvalidArgumentError(
        LeafLabel(i, leaf.name()) + ": shape " +
        ShapeToString({shape.data(), static_cast<size_t>(shape.size())}) +
        " != expected " + ShapeToString(expected.shape));
  }
  if (leaf.data().size() != expected_bytes) {
    return InvalidArgumentError(
        LeafLabel(i, leaf.name()) + ": " + std::to_string(leaf.data().size()) +
        " bytes of data, expected " + std::to_string(expected_bytes));
  }
  return OkStatus();
}

Status CheckVersionBound(uint64_t version) {
  if (version <= kMaxWeightVersion) return OkStatus();
  return InvalidArgumentError("weight version " + std::to_string(version) +
                              " exceeds the largest allowed, 2^63 - 1 = " +
                              std::to_string(kMaxWeightVersion));
}

const std::byte* PayloadOf(const proto::UpdateParams& update, size_t i) {
  return reinterpret_cast<const std::byte*>(update.leaves(i).data().data());
}

}  // namespace

Status NonFiniteRefusal(const ParamLeaves& layout,
                        const NonFiniteElement& bad) {
  return InvalidArgumentError(
      "leaf '" + layout.spec(bad.leaf).name +
      "' holds a non-finite value (NaN or infinity) at element " +
      std::to_string(bad.element) + "; nothing was applied");
}

StatusOr<DType> DTypeFromProto(int proto_dtype) {
  switch (proto_dtype) {
    case proto::F32:
      return DType::kF32;
    case proto::BF16:
      return DType::kBF16;
    case proto::F16:
      return DType::kF16;
    default:
      return InvalidArgumentError("unknown or unspecified dtype " +
                                  std::to_string(proto_dtype));
  }
}

proto::DType DTypeToProto(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return proto::F32;
    case DType::kBF16:
      return proto::BF16;
    case DType::kF16:
      return proto::F16;
  }
  return proto::DTYPE_UNSPECIFIED;
}

Status ValidateUpdateParams(const proto::UpdateParams& update,
                            const ParamLeaves& target, Mesh* mesh,
                            bool scan_payload) {
  RETURN_IF_ERROR(CheckVersionBound(update.version()));
  if (update.version() <= target.version()) {
    return FailedPreconditionError("update version " +
                                   std::to_string(update.version()) +
                                   " is not newer than the version in force (" +
                                   std::to_string(target.version()) + ")");
  }
  const size_t n = static_cast<size_t>(update.leaves_size());
  const size_t common = std::min(n, target.size());
  for (size_t i = 0; i < common; ++i) {
    Status s = CheckLeaf(i, update.leaves(i), target.spec(i), target.bytes(i));
    if (!s.ok()) return s;
  }
  if (n != target.size()) {
    std::string first =
        n < target.size()
            ? "missing " + LeafLabel(n, target.spec(n).name)
            : "unexpected extra " +
                  LeafLabel(target.size(), update.leaves(target.size()).name());
    return InvalidArgumentError(
        "update has " + std::to_string(n) + " leaves, receiver has " +
        std::to_string(target.size()) + ": " + first + "\n" +
        DiffStructures(target.specs(), SpecsOf(update)));
  }
  if (update.structure_fingerprint() != target.fingerprint()) {
    return InvalidArgumentError(
        "structure fingerprint " + HexU64(update.structure_fingerprint()) +
        " != receiver's " + HexU64(target.fingerprint()) +
        " although every leaf matches: sender and receiver disagree on the "
        "fingerprint");
  }
  if (!scan_payload) return OkStatus();
  // One read of the payload serves both checks. A hash mismatch is
  // reported first: NaN in a corrupted payload says nothing about the
  // sender's weights.
  ScanOptions checks;
  checks.hash = update.has_expected_content_hash();
  ASSIGN_OR_RETURN(const LeafScan scan,
                   ScanLeaves(
                       target, [&](size_t i) { return PayloadOf(update, i); },
                       checks, mesh));
  if (checks.hash && scan.content_hash != update.expected_content_hash()) {
    return DataLossError("payload content hash " + HexU64(scan.content_hash) +
                         " != expected " +
                         HexU64(update.expected_content_hash()) +
                         " (corrupted or mixed payload)");
  }
  // NaN or infinity would make every logit NaN, and the failure would show
  // up in requests, not here.
  if (scan.non_finite) {
    return NonFiniteRefusal(target, *scan.non_finite);
  }
  return OkStatus();
}

namespace {

// Copies src into target's leaves. With `hash`, also returns the hash of
// what was written, taken chunk by chunk from cache; this runs inside the
// decode stall, so only a sender that will compare it pays for it.
StatusOr<uint64_t> CopyIntoTarget(ParamLeaves& target, LeafDataFn src,
                                  bool hash, Mesh* mesh) {
  ASSIGN_OR_RETURN(const LeafScan scan,
                   CopyAndScanLeaves(
                       target, src, [&](size_t i) { return target.data(i); },
                       {.hash = hash, .find_non_finite = false}, mesh));
  return scan.content_hash;
}

}  // namespace

StatusOr<ApplyReport> ApplyUpdateParams(const proto::UpdateParams& update,
                                        ParamLeaves& target, Mesh* mesh,
                                        ApplyOptions options) {
  const auto start = std::chrono::steady_clock::now();
  const bool prechecked =
      options.payload_prechecked && update.has_expected_content_hash();
  RETURN_IF_ERROR(ValidateUpdateParams(update, target, mesh,
                                       /*scan_payload=*/!prechecked));
  ApplyReport report;
  if (update.return_checksums()) report.before = ComputeChecksums(target, mesh);
  ASSIGN_OR_RETURN(const uint64_t written,
                   CopyIntoTarget(
                       target, [&](size_t i) { return PayloadOf(update, i); },
                       /*hash=*/update.has_expected_content_hash(), mesh));
  if (prechecked && written != update.expected_content_hash()) {
    return InternalError(
        "the weights written hash to " + HexU64(written) +
        ", their message to " + HexU64(update.expected_content_hash()) +
        ": memory changed under the message; the version stays " +
        std::to_string(target.version()) +
        " and the weights must be "
        "reloaded");
  }
  target.set_version(update.version());
  if (update.return_checksums()) report.after = ComputeChecksums(target, mesh);
  report.version = target.version();
  report.bytes_copied = target.total_bytes();
  report.content_hash = written;
  report.elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  return report;
}

StatusOr<ApplyReport> ApplyLeaves(const ParamLeaves& source, uint64_t version,
                                  ParamLeaves& target, Mesh* mesh,
                                  VersionRule rule, ApplyOptions options) {
  const auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(CheckVersionBound(version));
  if (version < target.version() ||
      (version == target.version() && rule == VersionRule::kNewer)) {
    return FailedPreconditionError(
        "version " + std::to_string(version) + " is not " +
        (rule == VersionRule::kNewer ? "newer than" : "at least") +
        " the version in force (" + std::to_string(target.version()) + ")");
  }
  if (source.size() != target.size()) {
    return InvalidArgumentError(
        "the new weights have " + std::to_string(source.size()) +
        " leaves, the receiver " + std::to_string(target.size()));
  }
  for (size_t i = 0; i < source.size(); ++i) {
    const LeafSpec& a = source.spec(i);
    const LeafSpec& b = target.spec(i);
    if (a.name != b.name || a.shape != b.shape || a.dtype != b.dtype) {
      auto describe = [](const LeafSpec& spec) {
        return "'" + spec.name + "' " + ShapeToString(spec.shape) + " " +
               std::string(DTypeName(spec.dtype));
      };
      return InvalidArgumentError("leaf " + std::to_string(i) +
                                  " differs: " + describe(a) +
                                  " vs the receiver's " + describe(b));
    }
  }
  const std::optional<uint64_t> expected = options.expected_content_hash;
  auto source_data = [&](size_t i) { return source.data(i); };
  if (!options.payload_prechecked) {
    ASSIGN_OR_RETURN(
        const LeafScan scan,
        ScanLeaves(source, source_data, {.hash = expected.has_value()}, mesh));
    if (expected && scan.content_hash != *expected) {
      return DataLossError("new weights' content hash " +
                           HexU64(scan.content_hash) + " != expected " +
                           HexU64(*expected));
    }
    if (scan.non_finite) return NonFiniteRefusal(source, *scan.non_finite);
  }
  ASSIGN_OR_RETURN(const uint64_t written,
                   CopyIntoTarget(target, source_data,
                                  /*hash=*/expected.has_value(), mesh));
  if (expected && written != *expected) {
    return InternalError("the weights written hash to " + HexU64(written) +
                         ", their source to " + HexU64(*expected) +
                         ": the source changed during the copy; the version "
                         "stays " +
                         std::to_string(target.version()) +
                         " and the weights must be reloaded");
  }
  target.set_version(version);
  ApplyReport report;
  report.version = version;
  report.bytes_copied = target.total_bytes();
  report.content_hash = written;
  report.elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  return report;
}

Status ParseUpdateParams(std::string_view serialized,
                         proto::UpdateParams* scratch) {
  if (serialized.size() > static_cast<size_t>(INT32_MAX)) {
    return InvalidArgumentError(
        "serialized UpdateParams of " + std::to_string(serialized.size()) +
        " bytes exceeds protobuf's 2 GiB message limit");
  }
  if (!scratch->ParseFromArray(serialized.data(),
                               static_cast<int>(serialized.size()))) {
    return InvalidArgumentError("malformed or truncated UpdateParams (" +
                                std::to_string(serialized.size()) + " bytes)");
  }
  return OkStatus();
}

StatusOr<ApplyReport> ApplySerializedUpdateParams(std::string_view serialized,
                                                  proto::UpdateParams* scratch,
                                                  ParamLeaves& target,
                                                  Mesh* mesh) {
  RETURN_IF_ERROR(ParseUpdateParams(serialized, scratch));
  return ApplyUpdateParams(*scratch, target, mesh);
}

void FillUpdateParamsReply(const StatusOr<ApplyReport>& result,
                           const ParamLeaves& target,
                           proto::UpdateParamsReply* reply) {
  reply->Clear();
  reply->set_ok(result.ok());
  reply->set_version(target.version());
  if (!result.ok()) {
    reply->set_error(result.status().ToString());
    return;
  }
  reply->set_elapsed_us(result->elapsed_us);
  reply->set_bytes_copied(result->bytes_copied);
  if (result->before) {
    reply->mutable_before()->set_float64_sum(result->before->float64_sum);
    reply->mutable_before()->set_content_hash(result->before->content_hash);
  }
  if (result->after) {
    reply->mutable_after()->set_float64_sum(result->after->float64_sum);
    reply->mutable_after()->set_content_hash(result->after->content_hash);
  }
}

}  // namespace rlrt
