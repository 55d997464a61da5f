// Whole-file reads of small text files (indexes, adapter configs), bounded
// before anything is read so a huge or hostile file cannot exhaust memory.
#ifndef RLRT_MODELS_IO_SMALL_FILE_H_
#define RLRT_MODELS_IO_SMALL_FILE_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/status.h"

namespace rlrt {

// The file's bytes; kNotFound when it cannot be sized, kInvalidArgument
// (naming `what`) when larger than max_bytes, kDataLoss on a read error.
StatusOr<std::string> ReadSmallFile(const std::filesystem::path& path,
                                    uintmax_t max_bytes, std::string_view what);

}  // namespace rlrt

#endif  // RLRT_MODELS_IO_SMALL_FILE_H_
