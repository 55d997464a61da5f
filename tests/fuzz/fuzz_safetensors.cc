// Fuzzes safetensors parsing and checkpoint loading with one input used
// three ways:
//  1. as a safetensors file (SafetensorsFile::Open on a memfd): either an
//     error, or a file whose every tensor is consistent with its header and
//     whose data span holds exactly the input's bytes at its offsets;
//  2. as the model.safetensors of a tiny Qwen3 checkpoint (LoadCheckpointInto):
//     either an error with the leaves untouched, or leaves equal to the
//     file's tensors converted to F32;
//  3. as the model.safetensors.index.json of the same checkpoint saved in
//     valid shards: either an error with the leaves untouched, or exactly
//     the saved weights (the shards are fixed, so any accepted index must
//     lead to them).
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "models/config/model_config.h"
#include "models/io/checkpoint.h"
#include "models/io/safetensors.h"
#include "models/leaf_init.h"
#include "models/param_leaves.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace rlrt::fuzz {
namespace {

struct Fixture {
  int memfd = -1;
  std::string memfd_path;
  std::filesystem::path single_dir;   // config.json + the fuzzed file.
  std::filesystem::path sharded_dir;  // config.json + shards + fuzzed index.
  ParamLeaves saved;                  // What the shards hold, as F32.
  ParamLeaves leaves;                 // The load target, reset every run.
  std::vector<std::byte> sentinel;    // The target's contents before a load.
};

ParamLeaves AllocateOrDie(const ModelConfig& config) {
  StatusOr<ParamLeaves> leaves = ParamLeaves::Allocate(LeafSpecsFor(config));
  FUZZ_CHECK(leaves.ok(), "%s", leaves.status().ToString().c_str());
  return std::move(leaves).value();
}

Fixture* MakeFixture() {
  auto* f = new Fixture{.saved = AllocateOrDie(TinyConfig()),
                        .leaves = AllocateOrDie(TinyConfig())};
  f->memfd = ::memfd_create("fuzz_safetensors", MFD_CLOEXEC);
  FUZZ_CHECK(f->memfd >= 0, "memfd_create failed");
  // Reopening through /proc gives Open a path whose contents we control
  // without touching a disk.
  f->memfd_path = "/proc/self/fd/" + std::to_string(f->memfd);

  const ModelConfig config = TinyConfig();
  f->single_dir = ScratchDir("safetensors-single");
  WriteFileOrDie(f->single_dir / "config.json", ModelConfigToJson(config));

  // The saved weights are BF16 on disk; reading them back through a known
  // good load gives the F32 values an accepted index must reproduce.
  f->sharded_dir = ScratchDir("safetensors-sharded");
  FUZZ_CHECK(FillDummy(f->saved, kTinySeed).ok(), "FillDummy");
  SaveCheckpointOptions options;
  options.max_shard_bytes = kTinyShardBytes;
  options.dtype = DType::kBF16;
  Status saved = SaveCheckpoint(f->saved, config, f->sharded_dir, options);
  FUZZ_CHECK(saved.ok(), "%s", saved.ToString().c_str());
  saved = LoadCheckpointInto(f->sharded_dir, f->saved);
  FUZZ_CHECK(saved.ok(), "%s", saved.ToString().c_str());

  // Any pattern will do: it is only compared after a failed load, which
  // must leave every byte of it in place.
  f->sentinel.assign(f->leaves.total_bytes(), std::byte{0xA5});
  return f;
}

Fixture& GetFixture() {
  static Fixture* const fixture = MakeFixture();
  return *fixture;
}

void ResetLeaves(Fixture& f) {
  size_t offset = 0;
  for (size_t i = 0; i < f.leaves.size(); ++i) {
    std::memcpy(f.leaves.data(i), f.sentinel.data() + offset,
                f.leaves.bytes(i));
    offset += f.leaves.bytes(i);
  }
}

bool LeavesHoldSentinel(const Fixture& f) {
  size_t offset = 0;
  for (size_t i = 0; i < f.leaves.size(); ++i) {
    if (std::memcmp(f.leaves.data(i), f.sentinel.data() + offset,
                    f.leaves.bytes(i)) != 0) {
      return false;
    }
    offset += f.leaves.bytes(i);
  }
  return true;
}

// Bit patterns compared, not values: NaN payloads must survive a load too.
bool SameBits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

float ElementAsF32(const SafetensorsTensor& t, size_t k) {
  if (t.dtype == DType::kF32) {
    float v;
    std::memcpy(&v, t.data.data() + 4 * k, 4);
    return v;
  }
  uint16_t bits;
  std::memcpy(&bits, t.data.data() + 2 * k, 2);
  return t.dtype == DType::kBF16 ? Bf16ToF32(bits) : F16ToF32(bits);
}

// Use 1: the parser's own contract.
void CheckParse(Fixture& f, std::string_view input) {
  FUZZ_CHECK(::ftruncate(f.memfd, 0) == 0, "ftruncate");
  FUZZ_CHECK(::pwrite(f.memfd, input.data(), input.size(), 0) ==
                 static_cast<ssize_t>(input.size()),
             "pwrite");
  StatusOr<SafetensorsFile> file = SafetensorsFile::Open(f.memfd_path);
  if (!file.ok()) {
    FUZZ_CHECK(!file.status().message().empty(), "error without a message");
    return;
  }
  FUZZ_CHECK(input.size() >= 8, "accepted a file shorter than 8 bytes");
  uint64_t header_size;
  std::memcpy(&header_size, input.data(), 8);
  FUZZ_CHECK(header_size <= input.size() - 8, "header past the end");
  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = input.size() - data_start;
  FUZZ_CHECK(file->file_size() == input.size(), "size mismatch");

  uint64_t previous_end = 0;
  for (const SafetensorsTensor& t : file->tensors()) {
    FUZZ_CHECK(t.name != "__metadata__", "metadata parsed as a tensor");
    FUZZ_CHECK(t.begin <= t.end && t.end <= data_size,
               "tensor '%s' [%llu, %llu) outside %llu data bytes",
               t.name.c_str(), static_cast<unsigned long long>(t.begin),
               static_cast<unsigned long long>(t.end),
               static_cast<unsigned long long>(data_size));
    FUZZ_CHECK(t.data.size() == t.end - t.begin, "span length");
    for (int64_t d : t.shape) FUZZ_CHECK(d >= 0, "negative dim");
    FUZZ_CHECK(static_cast<uint64_t>(t.NumElements()) * DTypeSize(t.dtype) ==
                   t.data.size(),
               "tensor '%s': shape and byte size disagree", t.name.c_str());
    // Sorted by position and disjoint (empty tensors own no bytes).
    if (t.begin != t.end) {
      FUZZ_CHECK(t.begin >= previous_end, "tensor '%s' overlaps",
                 t.name.c_str());
      previous_end = t.end;
    }
    // Reading every byte is what ASan and the page bounds check; the
    // comparison checks the span points at the right bytes.
    FUZZ_CHECK(std::memcmp(t.data.data(), input.data() + data_start + t.begin,
                           t.data.size()) == 0,
               "tensor '%s' data is not the file's bytes", t.name.c_str());
    const SafetensorsTensor* found = file->Find(t.name);
    FUZZ_CHECK(found == &t, "Find('%s') misses", t.name.c_str());
  }
  // Moving keeps the spans valid (the mapping moves, not the bytes).
  SafetensorsFile moved = std::move(file).value();
  for (const SafetensorsTensor& t : moved.tensors()) {
    volatile std::byte sink{};
    for (std::byte b : t.data) sink = b;
    (void)sink;
  }
}

// Use 2: a whole checkpoint loaded from the input.
void CheckSingleFileLoad(Fixture& f, std::string_view input) {
  const std::filesystem::path file = f.single_dir / kSafetensorsFileName;
  WriteFileOrDie(file, input);
  ResetLeaves(f);
  Status s = LoadCheckpointInto(f.single_dir, f.leaves);
  if (!s.ok()) {
    FUZZ_CHECK(LeavesHoldSentinel(f), "failed load changed the leaves: %s",
               s.ToString().c_str());
    return;
  }
  StatusOr<SafetensorsFile> parsed = SafetensorsFile::Open(file);
  FUZZ_CHECK(parsed.ok(), "load accepted a file Open refuses");
  for (size_t i = 0; i < f.leaves.size(); ++i) {
    const SafetensorsTensor* t = parsed->Find(f.leaves.spec(i).name);
    FUZZ_CHECK(t != nullptr, "leaf '%s' loaded from nowhere",
               f.leaves.spec(i).name.c_str());
    FUZZ_CHECK(t->shape == f.leaves.spec(i).shape, "leaf '%s' shape",
               f.leaves.spec(i).name.c_str());
    const std::span<const float> values = f.leaves.F32(i);
    for (size_t k = 0; k < values.size(); ++k) {
      FUZZ_CHECK(SameBits(values[k], ElementAsF32(*t, k)),
                 "leaf '%s' element %zu", f.leaves.spec(i).name.c_str(), k);
    }
  }
}

// Use 3: the input as a shard index beside valid shards.
void CheckIndexLoad(Fixture& f, std::string_view input) {
  WriteFileOrDie(f.sharded_dir / kSafetensorsIndexFileName, input);
  ResetLeaves(f);
  Status s = LoadCheckpointInto(f.sharded_dir, f.leaves);
  if (!s.ok()) {
    FUZZ_CHECK(LeavesHoldSentinel(f), "failed load changed the leaves: %s",
               s.ToString().c_str());
    return;
  }
  for (size_t i = 0; i < f.leaves.size(); ++i) {
    FUZZ_CHECK(
        std::memcmp(f.leaves.data(i), f.saved.data(i), f.leaves.bytes(i)) == 0,
        "accepted index loaded other values into '%s'",
        f.leaves.spec(i).name.c_str());
  }
}

}  // namespace
}  // namespace rlrt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rlrt::fuzz::Fixture& f = rlrt::fuzz::GetFixture();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  rlrt::fuzz::CheckParse(f, input);
  rlrt::fuzz::CheckSingleFileLoad(f, input);
  rlrt::fuzz::CheckIndexLoad(f, input);
  return 0;
}
