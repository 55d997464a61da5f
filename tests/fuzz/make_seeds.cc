// Writes the binary seed inputs of the fuzz targets into
// <corpus>/<target>/seed-*: safetensors files and a shard index of the tiny
// checkpoint fuzz_safetensors loads, and serialized UpdateParams for the
// leaf list fuzz_update_params applies to. Valid seeds let the fuzzer
// start from inputs that reach the deepest checks; the tricky ones start it
// at the edges (overlaps, bad lengths, stale versions).
//
//   build-fuzz/bin/fuzz_make_seeds tests/fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "models/io/checkpoint.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "models/param_leaves.h"
#include "proto/update_params.pb.h"
#include "sampler/update_apply.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace rlrt::fuzz {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A safetensors file from header text and raw data bytes.
std::string Safetensors(std::string_view header, std::string_view data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  out += header;
  out += data;
  return out;
}

void SafetensorsSeeds(const std::filesystem::path& out) {
  const ModelConfig config = TinyConfig();
  StatusOr<ParamLeaves> leaves = ParamLeaves::Allocate(LeafSpecsFor(config));
  FUZZ_CHECK(leaves.ok(), "%s", leaves.status().ToString().c_str());
  FUZZ_CHECK(FillDummy(*leaves, kTinySeed).ok(), "FillDummy");
  const std::filesystem::path tmp = ScratchDir("make-seeds");

  // The tiny checkpoint as one BF16 file: a valid model.safetensors for
  // the single-file load.
  SaveCheckpointOptions options;
  options.dtype = DType::kBF16;
  FUZZ_CHECK(SaveCheckpoint(*leaves, config, tmp / "single", options).ok(),
             "save");
  WriteFileOrDie(out / "seed-tiny-bf16.safetensors",
                 ReadFile(tmp / "single" / kSafetensorsFileName));
  // The same in shards: the index is a valid seed for the sharded load.
  options.max_shard_bytes = kTinyShardBytes;
  FUZZ_CHECK(SaveCheckpoint(*leaves, config, tmp / "sharded", options).ok(),
             "save");
  WriteFileOrDie(out / "seed-index.json",
                 ReadFile(tmp / "sharded" / kSafetensorsIndexFileName));

  // Edge cases of the format itself.
  WriteFileOrDie(out / "seed-empty-header.safetensors", Safetensors("{}", ""));
  WriteFileOrDie(
      out / "seed-metadata-and-scalar.safetensors",
      Safetensors(R"({"__metadata__":{"format":"pt"},)"
                  R"("s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                  R"("e":{"dtype":"F16","shape":[0,5],"data_offsets":[4,4]}})",
                  std::string("\x00\x00\x80\x3f", 4)));
  WriteFileOrDie(
      out / "seed-overlap.safetensors",
      Safetensors(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
                  R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[2,6]}})",
                  "abcdef"));
  WriteFileOrDie(
      out / "seed-truncated.safetensors",
      Safetensors(
          R"({"a":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}})",
          "short"));
  std::string huge_length = Safetensors("{}", "");
  const uint64_t n = ~uint64_t{0} - 3;
  std::memcpy(huge_length.data(), &n, 8);
  WriteFileOrDie(out / "seed-huge-length.safetensors", huge_length);
}

void UpdateSeeds(const std::filesystem::path& out) {
  StatusOr<ParamLeaves> leaves = ParamLeaves::Allocate(UpdateLeafSpecs());
  FUZZ_CHECK(leaves.ok(), "%s", leaves.status().ToString().c_str());
  FUZZ_CHECK(FillDummy(*leaves, kTinySeed).ok(), "FillDummy");

  // Built field by field, as update_test_util.h does, so the seeds do not
  // depend on the trainer's builder.
  proto::UpdateParams u;
  u.set_version(kUpdateBaseVersion + 1);
  u.set_structure_fingerprint(leaves->fingerprint());
  for (size_t i = 0; i < leaves->size(); ++i) {
    proto::Leaf* leaf = u.add_leaves();
    leaf->set_name(leaves->spec(i).name);
    for (int64_t d : leaves->spec(i).shape) leaf->add_shape(d);
    leaf->set_dtype(DTypeToProto(leaves->spec(i).dtype));
    leaf->set_data(reinterpret_cast<const char*>(leaves->data(i)),
                   leaves->bytes(i));
  }
  WriteFileOrDie(out / "seed-valid.pb", u.SerializeAsString());

  proto::UpdateParams hashed = u;
  hashed.set_expected_content_hash(ContentHash(*leaves));
  hashed.set_return_checksums(true);
  hashed.set_flush_cache(true);
  WriteFileOrDie(out / "seed-valid-hash-checksums.pb",
                 hashed.SerializeAsString());

  proto::UpdateParams bad_hash = hashed;
  bad_hash.set_expected_content_hash(hashed.expected_content_hash() ^ 1);
  WriteFileOrDie(out / "seed-bad-hash.pb", bad_hash.SerializeAsString());

  proto::UpdateParams stale = u;
  stale.set_version(kUpdateBaseVersion);
  WriteFileOrDie(out / "seed-stale-version.pb", stale.SerializeAsString());

  proto::UpdateParams short_leaf = u;
  short_leaf.mutable_leaves(1)->mutable_data()->pop_back();
  WriteFileOrDie(out / "seed-short-leaf.pb", short_leaf.SerializeAsString());

  proto::UpdateParams missing = u;
  missing.mutable_leaves()->RemoveLast();
  WriteFileOrDie(out / "seed-missing-leaf.pb", missing.SerializeAsString());

  const std::string whole = u.SerializeAsString();
  WriteFileOrDie(out / "seed-truncated.pb", whole.substr(0, whole.size() / 2));
}

}  // namespace
}  // namespace rlrt::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path corpus = argv[1];
  std::filesystem::create_directories(corpus / "fuzz_safetensors");
  std::filesystem::create_directories(corpus / "fuzz_update_params");
  rlrt::fuzz::SafetensorsSeeds(corpus / "fuzz_safetensors");
  rlrt::fuzz::UpdateSeeds(corpus / "fuzz_update_params");
  return 0;
}
