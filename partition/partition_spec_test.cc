#include "partition/partition_spec.h"

#include <gtest/gtest.h>

#include <set>
#include <type_traits>

namespace rlrt {
namespace {

using Ids = std::vector<int>;

std::vector<MeshAssignment> Resolve(std::string_view spec, int devices) {
  StatusOr<std::vector<MeshAssignment>> resolved =
      ResolvePartitionSpec(spec, devices);
  EXPECT_TRUE(resolved.ok()) << spec << ": " << resolved.status();
  return resolved.ok() ? *resolved : std::vector<MeshAssignment>{};
}

const MeshAssignment* FindMesh(const std::vector<MeshAssignment>& meshes,
                               const std::string& name) {
  for (const MeshAssignment& mesh : meshes) {
    if (mesh.name == name) return &mesh;
  }
  return nullptr;
}

Ids IdsOf(const std::vector<MeshAssignment>& meshes, const std::string& name) {
  const MeshAssignment* mesh = FindMesh(meshes, name);
  EXPECT_NE(mesh, nullptr) << name;
  return mesh != nullptr ? mesh->device_ids : Ids{};
}

void ExpectDisjoint(const std::vector<MeshAssignment>& meshes, int devices) {
  std::set<int> used;
  for (const MeshAssignment& mesh : meshes) {
    for (int id : mesh.device_ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, devices);
      EXPECT_TRUE(used.insert(id).second) << "device " << id << " reused";
    }
  }
}

std::string ErrorOf(std::string_view spec, int devices) {
  StatusOr<std::vector<MeshAssignment>> resolved =
      ResolvePartitionSpec(spec, devices);
  EXPECT_FALSE(resolved.ok()) << spec;
  if (resolved.ok()) return "";
  EXPECT_EQ(resolved.status().code(), StatusCode::kInvalidArgument);
  return resolved.status().message();
}

TEST(PartitionSpecTest, RangeAndRest) {
  auto meshes = Resolve("rollout=0-1,actor=rest", 4);
  ASSERT_EQ(meshes.size(), 2u);
  EXPECT_EQ(meshes[0].name, "rollout");
  EXPECT_EQ(meshes[0].device_ids, (Ids{0, 1}));
  EXPECT_EQ(meshes[1].name, "actor");
  EXPECT_EQ(meshes[1].device_ids, (Ids{2, 3}));
  EXPECT_TRUE(meshes[0].axes.empty());
}

TEST(PartitionSpecTest, CountAndRest) {
  auto meshes = Resolve("rollout=2,actor=rest", 4);
  EXPECT_EQ(IdsOf(meshes, "rollout"), (Ids{0, 1}));
  EXPECT_EQ(IdsOf(meshes, "actor"), (Ids{2, 3}));
}

TEST(PartitionSpecTest, SingleIdsCountAndReference) {
  auto meshes = Resolve("rollout=#0+#3,actor=1,reference=rest", 4);
  ASSERT_EQ(meshes.size(), 3u);
  EXPECT_EQ(IdsOf(meshes, "rollout"), (Ids{0, 3}));
  EXPECT_EQ(IdsOf(meshes, "actor"), (Ids{1}));
  EXPECT_EQ(IdsOf(meshes, "reference"), (Ids{2}));
  ExpectDisjoint(meshes, 4);
}

TEST(PartitionSpecTest, RangesAndSingleIdsMix) {
  auto meshes = Resolve("rollout=0-1+#3+5-6,actor=rest", 8);
  EXPECT_EQ(IdsOf(meshes, "rollout"), (Ids{0, 1, 3, 5, 6}));
  EXPECT_EQ(IdsOf(meshes, "actor"), (Ids{2, 4, 7}));
  EXPECT_EQ(IdsOf(Resolve("rollout=2-2,actor=#0", 4), "rollout"), (Ids{2}));
}

TEST(PartitionSpecTest, ExplicitIdsAreClaimedBeforeCounts) {
  // actor comes first in the spec but its count only gets what the ids of
  // rollout leave free.
  auto meshes = Resolve("actor=2,rollout=#0+#1", 4);
  EXPECT_EQ(meshes[0].name, "actor");
  EXPECT_EQ(IdsOf(meshes, "actor"), (Ids{2, 3}));
  EXPECT_EQ(IdsOf(meshes, "rollout"), (Ids{0, 1}));
}

TEST(PartitionSpecTest, CountsGoInSpecOrderAndRestComesLast) {
  auto meshes = Resolve("actor=rest,rollout=1,reference=2", 6);
  EXPECT_EQ(IdsOf(meshes, "rollout"), (Ids{0}));
  EXPECT_EQ(IdsOf(meshes, "reference"), (Ids{1, 2}));
  EXPECT_EQ(IdsOf(meshes, "actor"), (Ids{3, 4, 5}));
  ExpectDisjoint(meshes, 6);
}

TEST(PartitionSpecTest, UnclaimedDevicesStayUnused) {
  auto meshes = Resolve("rollout=1,actor=#3", 4);
  EXPECT_EQ(IdsOf(meshes, "rollout"), (Ids{0}));
  EXPECT_EQ(IdsOf(meshes, "actor"), (Ids{3}));
}

TEST(PartitionSpecTest, NamesMayHaveDigitsAndUnderscores) {
  auto meshes = Resolve("rollout=1,actor=1,critic_2=rest", 4);
  EXPECT_EQ(IdsOf(meshes, "critic_2"), (Ids{2, 3}));
}

TEST(PartitionSpecTest, Axes) {
  auto meshes =
      Resolve("rollout=2:data=2,actor=rest:data=2*tensor=3*pipe=1", 8);
  const MeshAssignment* rollout = FindMesh(meshes, "rollout");
  ASSERT_NE(rollout, nullptr);
  ASSERT_EQ(rollout->axes.size(), 1u);
  EXPECT_EQ(rollout->axes[0].name, "data");
  EXPECT_EQ(rollout->axes[0].size, 2);
  const MeshAssignment* actor = FindMesh(meshes, "actor");
  ASSERT_NE(actor, nullptr);
  ASSERT_EQ(actor->axes.size(), 3u);
  EXPECT_EQ(actor->axes[1].name, "tensor");
  EXPECT_EQ(actor->axes[1].size, 3);
  EXPECT_EQ(actor->axes[2].name, "pipe");
}

TEST(PartitionSpecTest, DefaultSplitsInHalf) {
  auto two = Resolve("", 2);
  EXPECT_EQ(IdsOf(two, "rollout"), (Ids{0}));
  EXPECT_EQ(IdsOf(two, "actor"), (Ids{1}));
  auto eight = Resolve("", 8);
  EXPECT_EQ(IdsOf(eight, "rollout"), (Ids{0, 1, 2, 3}));
  EXPECT_EQ(IdsOf(eight, "actor"), (Ids{4, 5, 6, 7}));
  auto three = Resolve("", 3);
  EXPECT_EQ(IdsOf(three, "rollout"), (Ids{0}));
  EXPECT_EQ(IdsOf(three, "actor"), (Ids{1, 2}));
}

TEST(PartitionSpecTest, DefaultNeedsTwoDevices) {
  for (int devices : {0, 1}) {
    const std::string error = ErrorOf("", devices);
    EXPECT_EQ(error.rfind("partition spec", 0), 0u) << error;
    EXPECT_NE(error.find("at least 2"), std::string::npos) << error;
    EXPECT_NE(error.find("virtual"), std::string::npos) << error;
  }
}

TEST(PartitionSpecTest, ErrorMessagesNameTheCulprit) {
  EXPECT_EQ(ErrorOf("rollout=#5,actor=rest", 4),
            "partition spec: device 5 does not exist (4 devices)");
  EXPECT_EQ(ErrorOf("rollout=3-5,actor=rest", 4),
            "partition spec: device 5 does not exist (4 devices)");
  EXPECT_EQ(ErrorOf("rollout=0-1,actor=#1", 4),
            "partition spec: device 1 is in both 'rollout' and 'actor'");
  EXPECT_EQ(ErrorOf("rollout=1,actor=1,actor=1", 4),
            "partition spec: duplicate mesh name 'actor'");
  EXPECT_EQ(ErrorOf("rollout=2,actor=0", 4),
            "partition spec: mesh 'actor' is empty");
  EXPECT_EQ(ErrorOf("rollout=4,actor=rest", 4),
            "partition spec: mesh 'actor' is empty");
  EXPECT_EQ(ErrorOf("rollout=5,actor=rest", 4),
            "partition spec: asked for 5 devices but only 4 exist");
  EXPECT_EQ(ErrorOf("rollout=3,actor=2", 4),
            "partition spec: asked for 5 devices but only 4 exist");
  EXPECT_EQ(ErrorOf("rollout=#0+#1+#2,actor=2", 4),
            "partition spec: asked for 5 devices but only 4 exist");
  EXPECT_EQ(ErrorOf("rollout=x,actor=rest", 4),
            "partition spec: bad syntax at 'rollout=x'");
  EXPECT_EQ(ErrorOf("rollout=2", 4),
            "partition spec: missing required mesh 'actor'");
  EXPECT_EQ(ErrorOf("actor=2,reference=rest", 4),
            "partition spec: missing required mesh 'rollout'");
}

TEST(PartitionSpecTest, OtherErrors) {
  const std::string two_rests = ErrorOf("rollout=rest,actor=rest", 4);
  EXPECT_NE(two_rests.find("'rollout' and 'actor'"), std::string::npos)
      << two_rests;
  const std::string twice = ErrorOf("rollout=0-2+#1,actor=rest", 4);
  EXPECT_NE(twice.find("device 1"), std::string::npos) << twice;
  const std::string reversed = ErrorOf("rollout=2-1,actor=rest", 4);
  EXPECT_NE(reversed.find("'2-1'"), std::string::npos) << reversed;
  const std::string axes = ErrorOf("rollout=2:data=3,actor=rest", 4);
  EXPECT_NE(axes.find("'rollout'"), std::string::npos) << axes;
  const std::string zero_axis = ErrorOf("rollout=2:data=0,actor=rest", 4);
  EXPECT_NE(zero_axis.find("'data'"), std::string::npos) << zero_axis;
  const std::string same_axis =
      ErrorOf("rollout=2:data=1*data=2,actor=rest", 4);
  EXPECT_NE(same_axis.find("'data'"), std::string::npos) << same_axis;
  EXPECT_EQ(ErrorOf("rollout=1,actor=rest", -1).rfind("partition spec", 0), 0u);
}

TEST(PartitionSpecTest, BadSyntax) {
  const char* const specs[] = {
      "rollout",
      "Rollout=1,actor=1",
      "rollout=1,actor=1,",
      ",rollout=1",
      "rollout= 1,actor=1",
      "rollout=1 ,actor=1",
      "rollout=-1,actor=1",
      "rollout=1-,actor=1",
      "rollout=-1-2,actor=1",
      "rollout=#,actor=1",
      "rollout=#a,actor=1",
      "rollout=1+2,actor=rest",
      "rollout=#1+,actor=rest",
      "rollout=1:,actor=1",
      "rollout=1:data,actor=1",
      "rollout=1:data=,actor=1",
      "rollout=1:Data=1,actor=1",
      "rollout=1:data=1*,actor=1",
      "rollout=1;actor=1",
      "=1,actor=1",
      "rollout=,actor=1",
      "rollout=99999999999,actor=1",
      "2rollout=1,actor=1",
  };
  for (const char* spec : specs) {
    const std::string error = ErrorOf(spec, 4);
    EXPECT_EQ(error.rfind("partition spec: bad syntax at '", 0), 0u)
        << spec << " -> " << error;
  }
}

TEST(PartitionSpecTest, ResolvedMeshesAreAlwaysDisjoint) {
  const char* const specs[] = {
      "",
      "rollout=1,actor=rest",
      "rollout=#7+#0,actor=3,reference=rest",
      "actor=rest,rollout=2-3,reference=2",
      "rollout=0-3,actor=#4+#6,critic=1",
  };
  for (const char* spec : specs) {
    SCOPED_TRACE(spec);
    ExpectDisjoint(Resolve(spec, 8), 8);
  }
}

TEST(PartitionTest, CreatesDisjointMeshesWithDistinctWorkers) {
  StatusOr<std::vector<Device>> devices = DiscoverLocalDevices(4);
  ASSERT_TRUE(devices.ok());
  StatusOr<Partition> partition =
      Partition::Create("rollout=#0+#3,actor=1,reference=rest", *devices);
  ASSERT_TRUE(partition.ok()) << partition.status();
  ASSERT_EQ(partition->meshes().size(), 3u);
  EXPECT_EQ(partition->ToString(), "rollout=[0,3] actor=[1] reference=[2]");

  EXPECT_EQ(partition->rollout().name(), "rollout");
  EXPECT_EQ(partition->actor().name(), "actor");
  EXPECT_EQ(&partition->reference(), partition->Find("reference"));
  EXPECT_EQ(partition->Find("critic"), nullptr);
  ASSERT_EQ(partition->rollout().devices().size(), 2u);
  EXPECT_EQ(partition->rollout().devices()[1].id, 3);
  EXPECT_EQ(partition->rollout().devices()[1].core, (*devices)[3].core);

  std::set<int> ids;
  std::set<pid_t> tids;
  size_t workers = 0;
  for (const auto& mesh : partition->meshes()) {
    for (const Device& device : mesh->devices()) {
      EXPECT_TRUE(ids.insert(device.id).second);
    }
    for (pid_t tid : mesh->WorkerThreadIds()) {
      EXPECT_NE(tid, 0);
      tids.insert(tid);
      ++workers;
    }
  }
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(workers, 4u);
  EXPECT_EQ(tids.size(), 4u);
}

TEST(PartitionTest, ReferenceFallsBackToActorAndPartitionMoves) {
  static_assert(std::is_move_constructible_v<Partition>);
  static_assert(std::is_move_assignable_v<Partition>);
  StatusOr<std::vector<Device>> devices = DiscoverLocalDevices(2);
  ASSERT_TRUE(devices.ok());
  StatusOr<Partition> created = Partition::Create("", *devices);
  ASSERT_TRUE(created.ok()) << created.status();
  Mesh* actor = &created->actor();
  Partition partition = std::move(created).value();
  EXPECT_EQ(&partition.reference(), actor);
  EXPECT_EQ(&partition.actor(), actor);
  EXPECT_EQ(partition.ToString(), "rollout=[0] actor=[1]");
  // The meshes survive the move and still run work.
  int runs = 0;
  EXPECT_TRUE(partition.rollout()
                  .ParallelFor(1,
                               [&](const Shard&) {
                                 ++runs;
                                 return OkStatus();
                               })
                  .ok());
  EXPECT_EQ(runs, 1);
}

TEST(PartitionTest, ErrorsPropagate) {
  StatusOr<std::vector<Device>> devices = DiscoverLocalDevices(4);
  ASSERT_TRUE(devices.ok());
  StatusOr<Partition> bad = Partition::Create("rollout=9,actor=rest", *devices);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("partition spec", 0), 0u);
  StatusOr<Partition> too_few = Partition::Create("", {(*devices)[0]});
  EXPECT_FALSE(too_few.ok());
}

}  // namespace
}  // namespace rlrt
