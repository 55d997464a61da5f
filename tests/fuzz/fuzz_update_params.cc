// Fuzzes ApplySerializedUpdateParams onto a small leaf list of mixed dtypes
// (fuzz_fixtures.h). The input is the serialized message. Contract
// (atomicity): either OK, and then every leaf holds the message's payload,
// the version is the message's and the report agrees; or an error, and then
// every byte of every leaf and the version are exactly as before.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "models/leaf_checksum.h"
#include "models/param_leaves.h"
#include "proto/update_params.pb.h"
#include "sampler/update_apply.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace rlrt::fuzz {
namespace {

struct Fixture {
  ParamLeaves target;
  // The target's contents before every run: a pattern unlike any seed's
  // payload, so a partial copy shows.
  std::vector<std::vector<std::byte>> original;
  proto::UpdateParams scratch;  // Reused across runs, as a server does.
};

Fixture& GetFixture() {
  static Fixture* const fixture = [] {
    // Protobuf logs every string field with invalid UTF-8 it refuses; the
    // refusal is the behaviour under test, and the log would bury the
    // fuzzer's own output.
    google::protobuf::SetLogHandler(nullptr);
    StatusOr<ParamLeaves> leaves = ParamLeaves::Allocate(UpdateLeafSpecs());
    FUZZ_CHECK(leaves.ok(), "%s", leaves.status().ToString().c_str());
    auto* f = new Fixture{.target = std::move(leaves).value()};
    for (size_t i = 0; i < f->target.size(); ++i) {
      std::vector<std::byte> bytes(f->target.bytes(i));
      for (size_t k = 0; k < bytes.size(); ++k) {
        bytes[k] = static_cast<std::byte>(0x5A ^ (31 * i + k));
      }
      f->original.push_back(std::move(bytes));
    }
    return f;
  }();
  return *fixture;
}

// memcpy/memcmp that accept the null pointers of empty buffers (an empty
// vector's data() may be null, which the C functions do not allow).
void CopyBytes(std::byte* to, const void* from, size_t n) {
  if (n > 0) std::memcpy(to, from, n);
}
bool SameBytes(const void* a, const void* b, size_t n) {
  return n == 0 || std::memcmp(a, b, n) == 0;
}

void Reset(Fixture& f) {
  for (size_t i = 0; i < f.target.size(); ++i) {
    CopyBytes(f.target.data(i), f.original[i].data(), f.target.bytes(i));
  }
  f.target.set_version(kUpdateBaseVersion);
}

void Run(std::string_view input) {
  Fixture& f = GetFixture();
  Reset(f);
  StatusOr<ApplyReport> report =
      ApplySerializedUpdateParams(input, &f.scratch, f.target, nullptr);
  if (!report.ok()) {
    FUZZ_CHECK(f.target.version() == kUpdateBaseVersion,
               "refused update changed the version to %llu: %s",
               static_cast<unsigned long long>(f.target.version()),
               report.status().ToString().c_str());
    for (size_t i = 0; i < f.target.size(); ++i) {
      FUZZ_CHECK(
          SameBytes(f.target.data(i), f.original[i].data(), f.target.bytes(i)),
          "refused update changed leaf %zu: %s", i,
          report.status().ToString().c_str());
    }
    // The reply must be well-formed either way.
    proto::UpdateParamsReply reply;
    FillUpdateParamsReply(report, f.target, &reply);
    FUZZ_CHECK(!reply.ok() && !reply.error().empty() &&
                   reply.version() == kUpdateBaseVersion,
               "bad error reply");
    return;
  }

  // Accepted: the message parsed, so f.scratch holds it.
  const proto::UpdateParams& update = f.scratch;
  FUZZ_CHECK(update.version() > kUpdateBaseVersion, "accepted an old version");
  FUZZ_CHECK(f.target.version() == update.version() &&
                 report->version == update.version(),
             "version not applied");
  FUZZ_CHECK(update.structure_fingerprint() == f.target.fingerprint(),
             "accepted a wrong fingerprint");
  FUZZ_CHECK(static_cast<size_t>(update.leaves_size()) == f.target.size(),
             "accepted %d leaves for %zu", update.leaves_size(),
             f.target.size());
  FUZZ_CHECK(report->bytes_copied == f.target.total_bytes(), "bytes_copied");
  for (size_t i = 0; i < f.target.size(); ++i) {
    const proto::Leaf& leaf = update.leaves(static_cast<int>(i));
    const LeafSpec& spec = f.target.spec(i);
    FUZZ_CHECK(leaf.name() == spec.name, "leaf %zu name", i);
    FUZZ_CHECK(std::equal(leaf.shape().begin(), leaf.shape().end(),
                          spec.shape.begin(), spec.shape.end()),
               "leaf %zu shape", i);
    FUZZ_CHECK(
        leaf.data().size() == f.target.bytes(i) &&
            SameBytes(f.target.data(i), leaf.data().data(), f.target.bytes(i)),
        "leaf %zu does not hold the payload", i);
  }
  if (update.has_expected_content_hash()) {
    FUZZ_CHECK(ContentHash(f.target) == update.expected_content_hash(),
               "accepted a payload whose hash differs");
  }
  if (update.return_checksums()) {
    FUZZ_CHECK(report->before.has_value() && report->after.has_value(),
               "checksums asked for but missing");
    FUZZ_CHECK(report->after->content_hash == ContentHash(f.target),
               "reported hash is not the target's");
  }
  proto::UpdateParamsReply reply;
  FillUpdateParamsReply(report, f.target, &reply);
  FUZZ_CHECK(reply.ok() && reply.version() == update.version(), "bad reply");
}

}  // namespace
}  // namespace rlrt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rlrt::fuzz::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
