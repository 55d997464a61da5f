// Opening and validating safetensors files (the reading half of
// safetensors.h). Nothing in a file is trusted: every header field is checked
// before any span into the data is formed.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <utility>

#include "base/json_limits.h"
#include "models/io/safetensors.h"

namespace rlrt {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors lengths and data are little-endian");

using Json = nlohmann::json;

std::string Show(const Json& v) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

Status Corrupt(std::string message) {
  return DataLossError(std::move(message));
}

// Parses the header text, refusing duplicate keys at any depth: nlohmann
// would otherwise keep the last one silently, and two entries for one tensor
// name are a corrupt file, not a choice to make for the writer.
StatusOr<Json> ParseHeaderJson(std::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto on_event = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get<std::string>()).second &&
            duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  if (Status depth = CheckJsonDepth(text, "header"); !depth.ok()) {
    return Corrupt(depth.message());
  }
  Json root;
  try {
    root = Json::parse(text.begin(), text.end(), on_event);
  } catch (const Json::parse_error& e) {
    return Corrupt(JsonSyntaxError("header", e.byte));
  } catch (const Json::exception&) {
    return Corrupt("header is not valid JSON");
  } catch (const std::exception& e) {
    return ResourceExhaustedError(std::string("header: ") + e.what());
  }
  if (!duplicate.empty()) {
    return Corrupt("header has the key '" + duplicate + "' twice");
  }
  if (!root.is_object()) {
    return Corrupt("header is not a JSON object: " + Show(root));
  }
  return root;
}

Status ParseMetadata(const Json& value,
                     std::map<std::string, std::string>* out) {
  if (value.is_null()) return OkStatus();
  if (!value.is_object()) {
    return Corrupt("__metadata__ is not an object: " + Show(value));
  }
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string()) {
      return Corrupt("__metadata__ value of '" + key +
                     "' is not a string: " + Show(v));
    }
    (*out)[key] = v.get<std::string>();
  }
  return OkStatus();
}

// Validates one tensor entry against the data section size.
StatusOr<SafetensorsTensor> ParseEntry(const std::string& name,
                                       const Json& entry, uint64_t data_size) {
  const std::string where = "tensor '" + name + "': ";
  if (!entry.is_object()) {
    return Corrupt(where + "entry is not an object: " + Show(entry));
  }
  for (const auto& [key, unused] : entry.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      return Corrupt(where + "unexpected field '" + key + "'");
    }
  }
  SafetensorsTensor t;
  t.name = name;

  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string()) {
    return Corrupt(where + "missing or non-string dtype");
  }
  StatusOr<DType> parsed = ParseDType(dtype->get<std::string>());
  if (!parsed.ok()) {
    return InvalidArgumentError(where + parsed.status().message());
  }
  t.dtype = *parsed;

  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) {
    return Corrupt(where + "missing or non-list shape");
  }
  // Element counts stay below 2^62 / 4 so byte sizes cannot overflow.
  constexpr uint64_t kMaxElements = uint64_t{1} << 60;
  uint64_t elements = 1;
  for (const Json& d : *shape) {
    if (d.is_number_integer() && !d.is_number_unsigned()) {
      return Corrupt(where + "negative dim in shape " + Show(*shape));
    }
    if (!d.is_number_unsigned()) {
      return Corrupt(where + "shape " + Show(*shape) +
                     " has a non-integer dim");
    }
    const uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (dim != 0 && elements > kMaxElements / dim)) {
      return Corrupt(where + "shape " + Show(*shape) + " is too large");
    }
    elements *= dim;
    t.shape.push_back(static_cast<int64_t>(dim));
  }

  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned()) {
    return Corrupt(where + "data_offsets must be two non-negative integers");
  }
  t.begin = (*offsets)[0].get<uint64_t>();
  t.end = (*offsets)[1].get<uint64_t>();
  if (t.begin > t.end) {
    return Corrupt(where + "data_offsets " + Show(*offsets) + " are reversed");
  }
  const uint64_t bytes = elements * DTypeSize(t.dtype);
  if (t.end - t.begin != bytes) {
    return Corrupt(where + "shape " + Show(*shape) + " of " +
                   std::string(DTypeName(t.dtype)) + " needs " +
                   std::to_string(bytes) + " bytes but data_offsets " +
                   Show(*offsets) + " span " + std::to_string(t.end - t.begin));
  }
  if (t.end > data_size) {
    return Corrupt(where + "data_offsets " + Show(*offsets) +
                   " run past the end of the data section (" +
                   std::to_string(data_size) +
                   " bytes; is the file truncated?)");
  }
  return t;
}

// Sorts by position and refuses tensors that share bytes. Empty tensors own
// no bytes, so they cannot overlap anything.
Status SortAndCheckOverlaps(std::vector<SafetensorsTensor>& tensors) {
  std::sort(tensors.begin(), tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return std::tie(a.begin, a.end, a.name) <
                     std::tie(b.begin, b.end, b.name);
            });
  const SafetensorsTensor* furthest = nullptr;
  for (const SafetensorsTensor& t : tensors) {
    if (t.begin == t.end) continue;
    if (furthest != nullptr && t.begin < furthest->end) {
      return Corrupt("tensors '" + furthest->name + "' [" +
                     std::to_string(furthest->begin) + ", " +
                     std::to_string(furthest->end) + ") and '" + t.name +
                     "' [" + std::to_string(t.begin) + ", " +
                     std::to_string(t.end) + ") overlap");
    }
    if (furthest == nullptr || t.end > furthest->end) furthest = &t;
  }
  return OkStatus();
}

}  // namespace

int64_t SafetensorsTensor::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

StatusOr<SafetensorsFile> SafetensorsFile::Open(
    const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFoundError(path.string() + ": no such file");
    return UnavailableError(path.string() + ": " + std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError(path.string() + ": not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return Corrupt(path.string() + ": file is " + std::to_string(size) +
                   " bytes, too short for the 8-byte header length");
  }
  void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);  // The mapping keeps the file open.
  if (mapping == MAP_FAILED) {
    return UnavailableError(path.string() +
                            ": mmap failed: " + std::strerror(map_err));
  }
  SafetensorsFile file;
  file.path_ = path;
  file.mapping_ = mapping;
  file.size_ = size;

  const std::byte* bytes = static_cast<const std::byte*>(mapping);
  uint64_t header_size;
  std::memcpy(&header_size, bytes, 8);
  if (header_size > kMaxSafetensorsHeaderBytes) {
    return Corrupt(path.string() + ": header length " +
                   std::to_string(header_size) + " exceeds the limit of " +
                   std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  }
  if (header_size > size - 8) {
    return Corrupt(
        path.string() + ": header length " + std::to_string(header_size) +
        " runs past the end of the file (" + std::to_string(size) + " bytes)");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes + 8),
                              header_size);
  StatusOr<Json> root = ParseHeaderJson(text);
  if (!root.ok()) return root.status().WithContext(path.string());

  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = size - data_start;
  for (const auto& [name, entry] : root->items()) {
    if (name == "__metadata__") {
      Status s = ParseMetadata(entry, &file.metadata_);
      if (!s.ok()) return s.WithContext(path.string());
      continue;
    }
    StatusOr<SafetensorsTensor> t = ParseEntry(name, entry, data_size);
    if (!t.ok()) return t.status().WithContext(path.string());
    file.tensors_.push_back(std::move(t).value());
  }
  Status s = SortAndCheckOverlaps(file.tensors_);
  if (!s.ok()) return s.WithContext(path.string());
  for (size_t i = 0; i < file.tensors_.size(); ++i) {
    SafetensorsTensor& t = file.tensors_[i];
    t.data = std::span(bytes + data_start + t.begin, t.end - t.begin);
    file.index_.emplace(t.name, i);
  }
  return file;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      mapping_(std::exchange(other.mapping_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      tensors_(std::move(other.tensors_)),
      index_(std::move(other.index_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    Unmap();
    path_ = std::move(other.path_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    size_ = std::exchange(other.size_, 0);
    tensors_ = std::move(other.tensors_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() { Unmap(); }

void SafetensorsFile::Unmap() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
  mapping_ = nullptr;
  size_ = 0;
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace rlrt
