// Runs build/bin/hot_swap_demo as a user would and checks its JSON lines.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

using nlohmann::json;

struct RunResult {
  int exit_code = -1;
  std::map<std::string, json> phases;
  std::vector<std::string> order;
  std::string stdout_text;
};

RunResult RunDemo(const std::string& args) {
  const std::string command =
      std::string(HOT_SWAP_DEMO_PATH) + " " + args + " 2>/dev/null";
  RunResult r;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) r.stdout_text += buf;
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::istringstream lines(r.stdout_text);
  std::string line;
  while (std::getline(lines, line)) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("phase")) continue;
    r.order.push_back(j["phase"]);
    r.phases[j["phase"]] = j;
  }
  return r;
}

TEST(HotSwapDemoTest, SamplerEndsWithTheTrainersWeights) {
  RunResult r =
      RunDemo("--num_params=3000000 --num_leaves=5 --scale=0.01 --seed=7");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text;
  EXPECT_EQ(r.order, (std::vector<std::string>{
                         "partition", "init", "perturb", "checksum_before",
                         "update_params", "checksum_after", "verify"}));
  const json& before = r.phases["checksum_before"];
  const json& after = r.phases["checksum_after"];
  // Before the update the perturbation separates the two sides...
  EXPECT_NE(before["sampler"]["content_hash"],
            before["trainer"]["content_hash"]);
  // ...afterwards the sampler holds exactly the trainer's weights.
  EXPECT_EQ(after["sampler"], after["trainer"]);
  EXPECT_TRUE(r.phases["verify"]["match"].get<bool>());
  EXPECT_EQ(r.phases["verify"]["sampler_version"], 1);
  const double delta = after["checksum_delta"].get<double>();
  const double expected = before["trainer"]["float64_sum"].get<double>() -
                          before["sampler"]["float64_sum"].get<double>();
  EXPECT_NE(delta, 0.0);
  EXPECT_NEAR(delta, expected, 1e-9);
  EXPECT_LE(r.phases["init"]["num_params"].get<int64_t>(), 3000000);
}

TEST(HotSwapDemoTest, ZeroScaleLeavesTheSumUnchangedButStillSyncs) {
  RunResult r = RunDemo("--num_params=2000000 --scale=0");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text;
  EXPECT_EQ(r.phases["checksum_after"]["checksum_delta"].get<double>(), 0.0);
  EXPECT_TRUE(r.phases["verify"]["match"].get<bool>());
}

TEST(HotSwapDemoTest, VirtualDevicesAndExplicitSpec) {
  RunResult r = RunDemo(
      "--num_params=2000000 --num_virtual_devices=6 "
      "--partition=rollout=#0+#2+#4,actor=rest");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text;
  EXPECT_EQ(r.phases["partition"]["devices"], 6);
  EXPECT_TRUE(r.phases["verify"]["match"].get<bool>());
}

TEST(HotSwapDemoTest, BadFlagsFailCleanly) {
  for (const char* args :
       {"--partition=rollout=9,actor=rest", "--num_leaves=-1",
        "--num_params=10", "--scale=-1", "--partition=rollout=0-1,actor=1-2"}) {
    RunResult r = RunDemo(args);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_FALSE(r.phases.count("verify")) << args;
  }
}

}  // namespace
