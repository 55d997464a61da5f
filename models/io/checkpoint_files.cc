#include "models/io/checkpoint_files.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "base/json_limits.h"
#include "models/io/checkpoint.h"
#include "models/io/small_file.h"

namespace rlrt {
namespace {

using Json = nlohmann::json;

// An index of a huge model is a few hundred KB.
constexpr uintmax_t kMaxIndexBytes = uintmax_t{64} << 20;

// A shard must sit beside the index: no directories, no "..".
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// weight_map: tensor name -> shard file name.
StatusOr<std::map<std::string, std::string>> ParseIndex(
    const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(const std::string text,
                   ReadSmallFile(path, kMaxIndexBytes, "an index"));
  RETURN_IF_ERROR(CheckJsonDepth(text, path.string()));
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::parse_error& e) {
    return DataLossError(JsonSyntaxError(path.string(), e.byte));
  } catch (const Json::exception&) {
    return DataLossError(path.string() + " is not valid JSON");
  }
  if (!root.is_object()) {
    return DataLossError(path.string() + ": not a JSON object");
  }
  auto map = root.find("weight_map");
  if (map == root.end() || !map->is_object()) {
    return DataLossError(path.string() + ": no \"weight_map\" object");
  }
  if (auto meta = root.find("metadata");
      meta != root.end() && !meta->is_object() && !meta->is_null()) {
    return DataLossError(path.string() + ": \"metadata\" is not an object");
  }
  std::map<std::string, std::string> weight_map;
  for (const auto& [name, file] : map->items()) {
    if (!file.is_string() || !IsPlainFileName(file.get<std::string>())) {
      return DataLossError(
          path.string() + ": weight_map entry for tensor '" + name +
          "' is not a file name beside the index: " +
          file.dump(-1, ' ', false, Json::error_handler_t::replace));
    }
    weight_map[name] = file.get<std::string>();
  }
  if (weight_map.empty()) {
    return DataLossError(path.string() + ": weight_map is empty");
  }
  return weight_map;
}

Status AddTensors(CheckpointFiles& out, const SafetensorsFile& file) {
  for (const SafetensorsTensor& t : file.tensors()) {
    auto [it, inserted] =
        out.tensors.emplace(t.name, CheckpointTensor{&t, &file});
    if (!inserted) {
      return DataLossError("tensor '" + t.name + "' is in both " +
                           it->second.file->path().string() + " and " +
                           file.path().string());
    }
  }
  return OkStatus();
}

StatusOr<CheckpointFiles> OpenSharded(const std::filesystem::path& dir,
                                      const std::filesystem::path& index) {
  ASSIGN_OR_RETURN(const auto weight_map, ParseIndex(index));
  std::set<std::string> shard_names;
  for (const auto& [name, file] : weight_map) shard_names.insert(file);
  CheckpointFiles out;
  out.source = index;
  out.files.reserve(shard_names.size());
  for (const std::string& shard : shard_names) {
    StatusOr<SafetensorsFile> file = SafetensorsFile::Open(dir / shard);
    if (!file.ok()) {
      return file.status().WithContext("shard listed in " + index.string());
    }
    out.files.push_back(std::move(file).value());
  }
  for (const SafetensorsFile& file : out.files) {
    const std::string shard = file.path().filename().string();
    for (const SafetensorsTensor& t : file.tensors()) {
      auto listed = weight_map.find(t.name);
      if (listed == weight_map.end() || listed->second != shard) {
        return DataLossError(
            file.path().string() + ": tensor '" + t.name + "' is " +
            (listed == weight_map.end()
                 ? "not listed in " + index.string()
                 : "listed under " + listed->second + " in " + index.string()));
      }
    }
    RETURN_IF_ERROR(AddTensors(out, file));
  }
  for (const auto& [name, shard] : weight_map) {
    if (!out.tensors.contains(name)) {
      return DataLossError(index.string() + " lists tensor '" + name + "' in " +
                           shard + ", which does not contain it");
    }
  }
  return out;
}

}  // namespace

StatusOr<CheckpointFiles> OpenCheckpointFiles(
    const std::filesystem::path& dir) {
  const std::filesystem::path single = dir / kSafetensorsFileName;
  const std::filesystem::path index = dir / kSafetensorsIndexFileName;
  std::error_code ec;
  if (std::filesystem::exists(single, ec)) {
    CheckpointFiles out;
    out.source = single;
    ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(single));
    out.files.push_back(std::move(file));
    RETURN_IF_ERROR(AddTensors(out, out.files.front()));
    return out;
  }
  if (std::filesystem::exists(index, ec)) return OpenSharded(dir, index);
  return NotFoundError("no " + std::string(kSafetensorsFileName) + " or " +
                       kSafetensorsIndexFileName + " in " + dir.string());
}

}  // namespace rlrt
