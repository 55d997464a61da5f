#include "models/io/small_file.h"

#include <fstream>
#include <sstream>

namespace rlrt {

StatusOr<std::string> ReadSmallFile(const std::filesystem::path& path,
                                    uintmax_t max_bytes,
                                    std::string_view what) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return NotFoundError(path.string() + ": " + ec.message());
  if (size > max_bytes) {
    return InvalidArgumentError(path.string() + ": " + std::to_string(size) +
                                " bytes is too large for " + std::string(what));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return DataLossError("failed to read " + path.string());
  }
  return text.str();
}

}  // namespace rlrt
