#include "models/leaf_spec.h"

#include <limits>

#include "models/hash.h"

namespace rlrt {

int64_t LeafSpec::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(std::span<const int64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

Status ValidateLeafSpec(const LeafSpec& spec) {
  if (spec.name.empty()) return InvalidArgumentError("leaf with an empty name");
  // 2^40 elements is far beyond any model we run and keeps every byte count
  // and product below int64/size_t overflow.
  constexpr int64_t kMaxElements = int64_t{1} << 40;
  int64_t n = 1;
  for (int64_t d : spec.shape) {
    if (d < 0) {
      return InvalidArgumentError("leaf '" + spec.name +
                                  "' has negative dim in " +
                                  ShapeToString(spec.shape));
    }
    if (d != 0 && n > kMaxElements / d) {
      return InvalidArgumentError("leaf '" + spec.name + "' shape " +
                                  ShapeToString(spec.shape) + " is too large");
    }
    n *= d;
  }
  return OkStatus();
}

void FingerprintBuilder::Add(std::string_view name,
                             std::span<const int64_t> shape, DType dtype) {
  // Each field is hashed seeded by the chain so far, mixed with its length
  // or rank, so ("ab", "c") and ("a", "bc") can never chain alike.
  chain_ = HashBytes(name.data(), name.size(), chain_ ^ name.size());
  const uint64_t rank_and_dtype =
      (static_cast<uint64_t>(shape.size()) << 8) | static_cast<uint8_t>(dtype);
  chain_ = HashBytes(shape.data(), shape.size() * sizeof(int64_t),
                     chain_ ^ (rank_and_dtype * 0x9e3779b97f4a7c15ull));
  ++count_;
}

uint64_t FingerprintBuilder::Finish() const {
  return HashBytes(&count_, sizeof(count_), chain_);
}

uint64_t StructureFingerprint(std::span<const LeafSpec> specs) {
  FingerprintBuilder builder;
  for (const LeafSpec& s : specs) builder.Add(s.name, s.shape, s.dtype);
  return builder.Finish();
}

namespace {

std::string Describe(const LeafSpec& s) {
  return std::string(DTypeName(s.dtype)) + " " + ShapeToString(s.shape);
}

}  // namespace

std::string DiffStructures(std::span<const LeafSpec> expected,
                           std::span<const LeafSpec> actual, size_t max_lines) {
  std::string out;
  size_t lines = 0;
  size_t skipped = 0;
  auto emit = [&](std::string line) {
    if (lines < max_lines) {
      out += line;
      out += '\n';
      ++lines;
    } else {
      ++skipped;
    }
  };
  const size_t common = std::min(expected.size(), actual.size());
  for (size_t i = 0; i < common; ++i) {
    const LeafSpec& e = expected[i];
    const LeafSpec& a = actual[i];
    const std::string where = "leaf " + std::to_string(i) + " '" + e.name + "'";
    if (e.name != a.name)
      emit(where + ": name '" + a.name + "' != '" + e.name + "'");
    if (e.dtype != a.dtype) {
      emit(where + ": dtype " + std::string(DTypeName(a.dtype)) +
           " != " + std::string(DTypeName(e.dtype)));
    }
    if (e.shape != a.shape) {
      emit(where + ": shape " + ShapeToString(a.shape) +
           " != " + ShapeToString(e.shape));
    }
  }
  for (size_t i = common; i < expected.size(); ++i) {
    emit("missing leaf " + std::to_string(i) + " '" + expected[i].name + "' (" +
         Describe(expected[i]) + ")");
  }
  for (size_t i = common; i < actual.size(); ++i) {
    emit("extra leaf " + std::to_string(i) + " '" + actual[i].name + "' (" +
         Describe(actual[i]) + ")");
  }
  if (skipped > 0) out += "... and " + std::to_string(skipped) + " more\n";
  return out;
}

}  // namespace rlrt
