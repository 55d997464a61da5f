#include "partition/partition_spec.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace rlrt {
namespace {

Status SpecError(const std::string& message) {
  return InvalidArgumentError("partition spec: " + message);
}

Status BadSyntax(std::string_view at) {
  return SpecError("bad syntax at '" + std::string(at) + "'");
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

bool IsName(std::string_view text) {
  if (text.empty() || text[0] < 'a' || text[0] > 'z') return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// A non-negative decimal without sign; nullopt on anything else or overflow.
std::optional<int> ParseNumber(std::string_view text) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) {
        return c >= '0' && c <= '9';
      })) {
    return std::nullopt;
  }
  int value = 0;
  const auto [end, error] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// One entry of the spec, parsed but not yet resolved.
struct Entry {
  enum class Kind { kCount, kIds, kRest };
  std::string name;
  Kind kind = Kind::kCount;
  int count = 0;
  std::vector<int> ids;  // In the order given; checked to be < num_devices.
  std::vector<MeshAxis> axes;
};

Status ParseIds(std::string_view entry_text, std::string_view selector,
                int num_devices, Entry& entry) {
  auto no_such_device = [&](int id) {
    return SpecError("device " + std::to_string(id) + " does not exist (" +
                     std::to_string(num_devices) + " devices)");
  };
  for (std::string_view item : Split(selector, '+')) {
    if (!item.empty() && item[0] == '#') {
      const std::optional<int> id = ParseNumber(item.substr(1));
      if (!id) return BadSyntax(entry_text);
      if (*id >= num_devices) return no_such_device(*id);
      entry.ids.push_back(*id);
      continue;
    }
    const size_t dash = item.find('-');
    if (dash == std::string_view::npos) return BadSyntax(entry_text);
    const std::optional<int> first = ParseNumber(item.substr(0, dash));
    const std::optional<int> last = ParseNumber(item.substr(dash + 1));
    if (!first || !last) return BadSyntax(entry_text);
    if (*first > *last) {
      return SpecError("range '" + std::string(item) + "' of '" + entry.name +
                       "' is reversed");
    }
    // Checked before expanding, so a huge range costs nothing.
    if (*last >= num_devices) return no_such_device(*last);
    for (int id = *first; id <= *last; ++id) entry.ids.push_back(id);
  }
  return OkStatus();
}

Status ParseAxes(std::string_view entry_text, std::string_view text,
                 Entry& entry) {
  std::set<std::string_view> names;
  for (std::string_view axis : Split(text, '*')) {
    const size_t equals = axis.find('=');
    if (equals == std::string_view::npos) return BadSyntax(entry_text);
    const std::string_view name = axis.substr(0, equals);
    const std::optional<int> size = ParseNumber(axis.substr(equals + 1));
    if (!IsName(name) || !size) return BadSyntax(entry_text);
    if (*size == 0) {
      return SpecError("axis '" + std::string(name) + "' of '" + entry.name +
                       "' has size 0");
    }
    if (!names.insert(name).second) {
      return SpecError("axis '" + std::string(name) + "' of '" + entry.name +
                       "' appears twice");
    }
    entry.axes.push_back(MeshAxis{std::string(name), *size});
  }
  return OkStatus();
}

StatusOr<Entry> ParseEntry(std::string_view text, int num_devices) {
  const size_t equals = text.find('=');
  if (equals == std::string_view::npos) return BadSyntax(text);
  Entry entry;
  if (!IsName(text.substr(0, equals))) return BadSyntax(text);
  entry.name = std::string(text.substr(0, equals));

  std::string_view selector = text.substr(equals + 1);
  const size_t colon = selector.find(':');
  if (colon != std::string_view::npos) {
    RETURN_IF_ERROR(ParseAxes(text, selector.substr(colon + 1), entry));
    selector = selector.substr(0, colon);
  }
  if (selector == "rest") {
    entry.kind = Entry::Kind::kRest;
  } else if (const std::optional<int> count = ParseNumber(selector)) {
    entry.kind = Entry::Kind::kCount;
    entry.count = *count;
  } else {
    entry.kind = Entry::Kind::kIds;
    RETURN_IF_ERROR(ParseIds(text, selector, num_devices, entry));
  }
  return entry;
}

// Checks that only need the entries, not the device assignment.
Status CheckEntries(const std::vector<Entry>& entries) {
  std::set<std::string> names;
  const Entry* rest = nullptr;
  for (const Entry& entry : entries) {
    if (!names.insert(entry.name).second) {
      return SpecError("duplicate mesh name '" + entry.name + "'");
    }
    if (entry.kind == Entry::Kind::kRest) {
      if (rest != nullptr) {
        return SpecError("both '" + rest->name + "' and '" + entry.name +
                         "' ask for 'rest'; at most one may");
      }
      rest = &entry;
    }
  }
  for (const char* required : {"rollout", "actor"}) {
    if (!names.contains(required)) {
      return SpecError("missing required mesh '" + std::string(required) + "'");
    }
  }
  return OkStatus();
}

// Gives every entry its devices: explicit ids, then counts, then rest.
StatusOr<std::vector<std::vector<int>>> Claim(const std::vector<Entry>& entries,
                                              int num_devices) {
  std::vector<std::vector<int>> claimed(entries.size());
  std::vector<int> owner(num_devices, -1);  // Entry index per device.
  int64_t asked = 0;
  for (size_t e = 0; e < entries.size(); ++e) {
    if (entries[e].kind == Entry::Kind::kCount) asked += entries[e].count;
    if (entries[e].kind != Entry::Kind::kIds) continue;
    for (int id : entries[e].ids) {
      if (owner[id] == static_cast<int>(e)) {
        return SpecError("device " + std::to_string(id) +
                         " is listed twice in '" + entries[e].name + "'");
      }
      if (owner[id] >= 0) {
        return SpecError("device " + std::to_string(id) + " is in both '" +
                         entries[owner[id]].name + "' and '" + entries[e].name +
                         "'");
      }
      owner[id] = static_cast<int>(e);
      claimed[e].push_back(id);
      ++asked;
    }
  }
  if (asked > num_devices) {
    return SpecError("asked for " + std::to_string(asked) +
                     " devices but only " + std::to_string(num_devices) +
                     " exist");
  }
  // Enough devices are free for every count, by the check above.
  auto take_free = [&](size_t e, int64_t limit) {
    for (int id = 0; id < num_devices && limit > 0; ++id) {
      if (owner[id] >= 0) continue;
      owner[id] = static_cast<int>(e);
      claimed[e].push_back(id);
      --limit;
    }
  };
  for (size_t e = 0; e < entries.size(); ++e) {
    if (entries[e].kind == Entry::Kind::kCount) take_free(e, entries[e].count);
  }
  for (size_t e = 0; e < entries.size(); ++e) {
    if (entries[e].kind == Entry::Kind::kRest) take_free(e, num_devices);
  }
  return claimed;
}

}  // namespace

StatusOr<std::vector<MeshAssignment>> ResolvePartitionSpec(
    std::string_view spec, int num_devices) {
  if (num_devices < 0) {
    return SpecError("negative device count " + std::to_string(num_devices));
  }
  std::string default_spec;
  if (spec.empty()) {
    if (num_devices < 2) {
      return SpecError(
          "the default partition needs at least 2 devices, one for rollout "
          "and one for actor, but there are " +
          std::to_string(num_devices) +
          "; pass virtual devices to share cores");
    }
    default_spec = "rollout=" + std::to_string(num_devices / 2) + ",actor=rest";
    spec = default_spec;
  }

  std::vector<Entry> entries;
  for (std::string_view text : Split(spec, ',')) {
    ASSIGN_OR_RETURN(Entry entry, ParseEntry(text, num_devices));
    entries.push_back(std::move(entry));
  }
  RETURN_IF_ERROR(CheckEntries(entries));
  ASSIGN_OR_RETURN(std::vector<std::vector<int>> claimed,
                   Claim(entries, num_devices));

  std::vector<MeshAssignment> assignments;
  for (size_t e = 0; e < entries.size(); ++e) {
    MeshAssignment assignment{entries[e].name, std::move(claimed[e]),
                              std::move(entries[e].axes)};
    if (assignment.device_ids.empty()) {
      return SpecError("mesh '" + assignment.name + "' is empty");
    }
    std::sort(assignment.device_ids.begin(), assignment.device_ids.end());
    int64_t product = 1;
    for (const MeshAxis& axis : assignment.axes) {
      product = std::min<int64_t>(product * axis.size, int64_t{1} << 32);
    }
    const int64_t size = static_cast<int64_t>(assignment.device_ids.size());
    if (!assignment.axes.empty() && product != size) {
      return SpecError("axes of '" + assignment.name + "' multiply to " +
                       std::to_string(product) + ", not to its " +
                       std::to_string(size) + " devices");
    }
    assignments.push_back(std::move(assignment));
  }
  return assignments;
}

StatusOr<Partition> Partition::Create(std::string_view spec,
                                      const std::vector<Device>& devices) {
  ASSIGN_OR_RETURN(
      std::vector<MeshAssignment> assignments,
      ResolvePartitionSpec(spec, static_cast<int>(devices.size())));
  std::map<int, const Device*> by_id;
  for (const Device& device : devices) {
    if (!by_id.emplace(device.id, &device).second) {
      return SpecError("two devices have id " + std::to_string(device.id));
    }
  }
  Partition partition;
  for (MeshAssignment& assignment : assignments) {
    std::vector<Device> mesh_devices;
    for (int id : assignment.device_ids) {
      const auto it = by_id.find(id);
      if (it == by_id.end()) {
        return SpecError("device " + std::to_string(id) +
                         " is not among the given devices");
      }
      mesh_devices.push_back(*it->second);
    }
    ASSIGN_OR_RETURN(std::unique_ptr<Mesh> mesh,
                     Mesh::Create(assignment.name, std::move(mesh_devices),
                                  std::move(assignment.axes)));
    partition.meshes_.push_back(std::move(mesh));
  }
  return partition;
}

Mesh* Partition::Find(std::string_view name) const {
  for (const auto& mesh : meshes_) {
    if (mesh->name() == name) return mesh.get();
  }
  return nullptr;
}

Mesh& Partition::reference() const {
  Mesh* reference = Find("reference");
  return reference != nullptr ? *reference : actor();
}

std::string Partition::ToString() const {
  std::string out;
  for (const auto& mesh : meshes_) {
    if (!out.empty()) out += ' ';
    out += mesh->name() + "=[";
    for (size_t i = 0; i < mesh->devices().size(); ++i) {
      if (i > 0) out += ',';
      out += std::to_string(mesh->devices()[i].id);
    }
    out += ']';
  }
  return out;
}

}  // namespace rlrt
