// The safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes   little-endian u64 N, the header length
//   N bytes   UTF-8 JSON object: {"__metadata__": {str: str}?,
//             "<name>": {"dtype": "F32", "shape": [..],
//                        "data_offsets": [begin, end]}, ...}
//   rest      the data section; offsets are relative to its start.
// Only the dtypes of parameter leaves (F32, BF16, F16) are supported.
#ifndef RLRT_MODELS_IO_SAFETENSORS_H_
#define RLRT_MODELS_IO_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "models/dtype.h"

namespace rlrt {

// Larger headers are refused, as the reference implementation does; real
// headers are a few hundred KB at most.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  // Offsets within the data section, as the header gives them.
  uint64_t begin = 0;
  uint64_t end = 0;
  // The bytes in the mapped file. Not necessarily aligned to the element
  // size: read them with memcpy, not through a float*.
  std::span<const std::byte> data;

  int64_t NumElements() const;
};

// A read-only, memory-mapped safetensors file whose header has been fully
// validated: known dtypes, non-negative dims, byte sizes matching shapes,
// offsets inside the data section, no two tensors sharing bytes, unique
// names, string-only metadata. The data is not copied; spans stay valid
// while the object lives (moves keep them valid). As with any mapping, the
// file must not be truncated by someone else while it is open.
class SafetensorsFile {
 public:
  static StatusOr<SafetensorsFile> Open(const std::filesystem::path& path);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::filesystem::path& path() const { return path_; }
  // In the order of their data in the file.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* Find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const {
    return metadata_;
  }
  uint64_t file_size() const { return size_; }

 private:
  SafetensorsFile() = default;
  void Unmap();

  std::filesystem::path path_;
  void* mapping_ = nullptr;
  uint64_t size_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write; `data` holds exactly NumElements * DTypeSize bytes.
struct SafetensorsTensorData {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;
};

// Writes a safetensors file: header padded with spaces to a multiple of 8
// bytes (so the data section starts 8-aligned), tensors laid out back to
// back in the order given. Writes a temporary file and renames it over
// `path`, so readers never see a partial file. Refuses empty or duplicate
// names, the reserved name "__metadata__", negative dims, and data whose
// size does not match the shape; then nothing is written.
Status WriteSafetensors(const std::filesystem::path& path,
                        std::span<const SafetensorsTensorData> tensors,
                        const std::map<std::string, std::string>& metadata);

}  // namespace rlrt

#endif  // RLRT_MODELS_IO_SAFETENSORS_H_
