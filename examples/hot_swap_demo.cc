// hot_swap_demo: the weight-sync path end to end, without a model.
//
// Partitions the local devices, builds a trainer-side and a sampler-side leaf
// list of the same Qwen3-shaped structure with identical dummy weights (each
// on its own mesh), perturbs the trainer's, sends one UpdateParams and checks
// that the sampler now holds exactly the trainer's weights. Prints JSON lines;
// exits 0 only if the checksums and content hashes match.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "models/config/param_budget.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "models/param_leaves.h"
#include "partition/device.h"
#include "partition/partition_spec.h"
#include "sampler/update_apply.h"
#include "trainer_bridge/update_builder.h"

DEFINE_int64(num_params, 16'000'000, "Model size in parameters (F32).");
DEFINE_string(partition, "",
              "Partition spec, e.g. 'rollout=1,actor=rest' (see "
              "partition/partition_spec.h); empty: half the devices each.");
DEFINE_int32(num_virtual_devices, 0,
             "Use this many virtual devices instead of one per core.");
DEFINE_uint64(seed, 42, "Seed of the perturbation noise.");
DEFINE_double(scale, 1e-3, "Standard deviation of the perturbation noise.");
DEFINE_int64(num_leaves, 4, "Perturb the first this many leaves.");
DEFINE_uint64(init_seed, 0, "Seed of the dummy weights of both sides.");

namespace rlrt {
namespace {

using nlohmann::json;

std::string Hex(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof(buf), "0x%016llx",
                static_cast<unsigned long long>(v));
  return buf;
}

json ChecksumJson(const LeafChecksums& c) {
  return {{"float64_sum", c.float64_sum},
          {"content_hash", Hex(c.content_hash)}};
}

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
      .count();
}

void Emit(const json& line) { std::cout << line.dump() << std::endl; }

Status Run() {
  ASSIGN_OR_RETURN(std::vector<Device> devices,
                   DiscoverLocalDevices(FLAGS_num_virtual_devices));
  ASSIGN_OR_RETURN(Partition partition,
                   Partition::Create(FLAGS_partition, devices));
  Mesh& actor = partition.actor();
  Mesh& rollout = partition.rollout();
  Emit({{"phase", "partition"},
        {"devices", devices.size()},
        {"meshes", partition.ToString()}});

  ASSIGN_OR_RETURN(ModelConfig shape, ConfigForParamBudget(FLAGS_num_params));
  const std::vector<LeafSpec> specs = LeafSpecsFor(shape);
  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(ParamLeaves trainer, ParamLeaves::Allocate(specs));
  ASSIGN_OR_RETURN(ParamLeaves sampler, ParamLeaves::Allocate(specs));
  RETURN_IF_ERROR(FillDummy(trainer, FLAGS_init_seed, &actor));
  RETURN_IF_ERROR(FillDummy(sampler, FLAGS_init_seed, &rollout));
  Emit({{"phase", "init"},
        {"num_params", trainer.total_elements()},
        {"num_leaves", trainer.size()},
        {"bytes", trainer.total_bytes()},
        {"hidden_size", shape.hidden_size},
        {"num_layers", shape.num_hidden_layers},
        {"structure_fingerprint", Hex(trainer.fingerprint())},
        {"init_ms", MsSince(start)}});

  start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(
      Perturb(trainer, FLAGS_seed, FLAGS_scale, FLAGS_num_leaves, &actor));
  Emit({{"phase", "perturb"},
        {"seed", FLAGS_seed},
        {"scale", FLAGS_scale},
        {"num_leaves", std::min<int64_t>(FLAGS_num_leaves, trainer.size())},
        {"perturb_ms", MsSince(start)}});

  const LeafChecksums sampler_before = ComputeChecksums(sampler, &rollout);
  const LeafChecksums trainer_sums = ComputeChecksums(trainer, &actor);
  Emit({{"phase", "checksum_before"},
        {"sampler", ChecksumJson(sampler_before)},
        {"trainer", ChecksumJson(trainer_sums)}});

  // The trainer builds one message on its mesh; the sampler applies it on
  // its own. The content hash rides along so the sampler verifies the
  // payload before it writes anything.
  start = std::chrono::steady_clock::now();
  proto::UpdateParams update;
  BuildOptions options;
  options.include_content_hash = true;
  RETURN_IF_ERROR(
      BuildUpdateParams(trainer, /*version=*/1, options, &actor, &update));
  const double build_ms = MsSince(start);
  StatusOr<ApplyReport> applied = ApplyUpdateParams(update, sampler, &rollout);
  proto::UpdateParamsReply reply;
  FillUpdateParamsReply(applied, sampler, &reply);
  Emit({{"phase", "update_params"},
        {"ok", reply.ok()},
        {"error", reply.error()},
        {"version", reply.version()},
        {"bytes", reply.bytes_copied()},
        {"build_ms", build_ms},
        {"apply_ms", reply.elapsed_us() / 1000.0}});
  RETURN_IF_ERROR(applied.status());

  const LeafChecksums sampler_after = ComputeChecksums(sampler, &rollout);
  Emit({{"phase", "checksum_after"},
        {"sampler", ChecksumJson(sampler_after)},
        {"trainer", ChecksumJson(trainer_sums)},
        {"checksum_delta",
         sampler_after.float64_sum - sampler_before.float64_sum}});

  const bool sum_match = sampler_after.float64_sum == trainer_sums.float64_sum;
  const bool hash_match =
      sampler_after.content_hash == trainer_sums.content_hash;
  Emit({{"phase", "verify"},
        {"match", sum_match && hash_match},
        {"float64_sum_match", sum_match},
        {"content_hash_match", hash_match},
        {"sampler_version", sampler.version()}});
  if (!(sum_match && hash_match)) {
    return DataLossError(
        "sampler weights differ from the trainer's after the update");
  }
  return OkStatus();
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Sends one UpdateParams from a trainer to a sampler leaf list.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  rlrt::Status status = rlrt::Run();
  if (!status.ok()) {
    std::cerr << "hot_swap_demo: " << status << std::endl;
    return 1;
  }
  return 0;
}
