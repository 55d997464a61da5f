// Writing safetensors files (the writing half of safetensors.h).
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "models/io/atomic_file.h"
#include "models/io/safetensors.h"
#include "models/leaf_spec.h"

namespace rlrt {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors lengths and data are little-endian");

// The header text, spaces included, or why the tensors cannot be written.
StatusOr<std::string> BuildHeader(
    std::span<const SafetensorsTensorData> tensors,
    const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps tensors in the order given, which is also the order
  // of their data, so a reader walking the header walks the file.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    header["__metadata__"] = nlohmann::ordered_json(metadata);
  }
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const SafetensorsTensorData& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") {
      return InvalidArgumentError("cannot write a tensor named '" + t.name +
                                  "'");
    }
    if (!names.insert(t.name).second) {
      return InvalidArgumentError("tensor '" + t.name + "' given twice");
    }
    const LeafSpec spec{t.name, t.shape, t.dtype};
    RETURN_IF_ERROR(ValidateLeafSpec(spec));
    if (spec.NumBytes() != t.data.size()) {
      return InvalidArgumentError(
          "tensor '" + t.name + "': shape " + ShapeToString(t.shape) + " of " +
          std::string(DTypeName(t.dtype)) + " needs " +
          std::to_string(spec.NumBytes()) + " bytes, got " +
          std::to_string(t.data.size()));
    }
    header[t.name] = {{"dtype", std::string(DTypeName(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {
    return InvalidArgumentError(
        std::string("tensor names and metadata must be UTF-8: ") + e.what());
  }
  // Padding to 8 bytes puts the data section on an 8-byte boundary; the
  // format allows trailing spaces in the header for exactly this.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

Status WriteSafetensors(const std::filesystem::path& path,
                        std::span<const SafetensorsTensorData> tensors,
                        const std::map<std::string, std::string>& metadata) {
  StatusOr<std::string> header = BuildHeader(tensors, metadata);
  if (!header.ok()) return header.status().WithContext(path.string());
  ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::Create(path));
  const uint64_t length = header->size();
  std::byte length_bytes[8];
  std::memcpy(length_bytes, &length, 8);
  RETURN_IF_ERROR(writer.Append(length_bytes));
  RETURN_IF_ERROR(writer.Append(*header));
  for (const SafetensorsTensorData& t : tensors) {
    RETURN_IF_ERROR(writer.Append(t.data));
  }
  return writer.Commit();
}

}  // namespace rlrt
