// Splitting the local devices into named, disjoint meshes.
//
// clang-format off
// Grammar (whitespace is not allowed):
//   spec      := entry ("," entry)*
//   entry     := name "=" selector [":" axes]
//   name      := [a-z][a-z0-9_]*         (unique; "rollout" and "actor" required)
//   selector  := count | ids | "rest"
//   count     := N                       the N lowest-numbered free devices
//   ids       := item ("+" item)*        explicit device ids
//   item      := A "-" B | "#" A         inclusive range, or one id
//   axes      := axis ("*" axis)*        e.g. "data=2*tensor=2"; sizes multiply
//   axis      := name "=" N              to the mesh's device count
// Explicit ids are claimed first, then counts in spec order, then "rest" (at
// most one entry) takes every device still free. Devices no entry claims stay
// unused. Examples on 4 devices: "rollout=0-1,actor=rest",
// "rollout=2,actor=rest", "rollout=#0+#3,actor=1,reference=rest".
// With an empty spec the default is "rollout=<D/2>,actor=rest" (D >= 2).
// clang-format on
#ifndef RLRT_PARTITION_PARTITION_SPEC_H_
#define RLRT_PARTITION_PARTITION_SPEC_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "partition/device.h"
#include "partition/mesh.h"

namespace rlrt {

// One mesh of a resolved spec: its name, device ids and axes.
struct MeshAssignment {
  std::string name;
  std::vector<int> device_ids;
  std::vector<MeshAxis> axes;  // Empty: the Mesh default.
};

// Parses and resolves `spec` against `num_devices` devices without starting
// any thread. Errors (all InvalidArgument, message starts with "partition
// spec"): bad syntax, duplicate names, unknown ids, overlap between meshes,
// empty meshes, more devices asked for than exist, missing rollout/actor,
// more than one "rest", axes that do not multiply to the mesh size.
StatusOr<std::vector<MeshAssignment>> ResolvePartitionSpec(
    std::string_view spec, int num_devices);

// The started meshes of a resolved spec; owns them.
class Partition {
 public:
  static StatusOr<Partition> Create(std::string_view spec,
                                    const std::vector<Device>& devices);

  // Null when no mesh has that name.
  Mesh* Find(std::string_view name) const;
  Mesh& rollout() const { return *Find("rollout"); }
  Mesh& actor() const { return *Find("actor"); }
  // The "reference" mesh if the spec names one, else the actor mesh.
  Mesh& reference() const;
  const std::vector<std::unique_ptr<Mesh>>& meshes() const { return meshes_; }
  // e.g. "rollout=[0] actor=[1]"
  std::string ToString() const;

 private:
  std::vector<std::unique_ptr<Mesh>> meshes_;
};

}  // namespace rlrt

#endif  // RLRT_PARTITION_PARTITION_SPEC_H_
