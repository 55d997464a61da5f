// Runs build/bin/hot_swap_demo as a user would and checks its JSON lines.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
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

TEST(HotSwapDemoTest, PerturbedDummyWeightsReachTheRunningEngine) {
  RunResult r = RunDemo("--scale=0.01 --seed=7 --num_leaves=5");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text;
  EXPECT_EQ(r.order,
            (std::vector<std::string>{"partition", "engine_ready_dummy",
                                      "weights_swapped", "generate_result"}));
  const json& ready = r.phases["engine_ready_dummy"];
  EXPECT_EQ(ready["load_format"], "dummy");
  EXPECT_EQ(ready["model"], "qwen3-tiny");
  const json& swap = r.phases["weights_swapped"];
  EXPECT_TRUE(swap["match"].get<bool>());
  EXPECT_EQ(swap["version"], 1);
  EXPECT_EQ(swap["checksum_after"], swap["trainer_checksum"]);
  EXPECT_NE(swap["checksum_before"]["content_hash"],
            swap["checksum_after"]["content_hash"]);
  EXPECT_NEAR(swap["checksum_delta"].get<double>(),
              swap["checksum_after"]["float64_sum"].get<double>() -
                  swap["checksum_before"]["float64_sum"].get<double>(),
              1e-9);
  const json& gen = r.phases["generate_result"];
  EXPECT_EQ(gen["prompt"], "你是谁");
  EXPECT_EQ(gen["output_ids"].size(), 32u);
  const json& meta = gen["meta_info"];
  EXPECT_EQ(meta["weight_version"], 1);
  EXPECT_EQ(meta["completion_tokens"], 32);
  EXPECT_EQ(meta["finish_reason"], "length");
  // "<|im_start|>user\n你是谁<|im_end|>\n<|im_start|>assistant\n"
  EXPECT_GT(meta["prompt_tokens"].get<int>(), 5);
  EXPECT_GT(meta["e2e_latency"].get<double>(), 0.0);
}

// The reference flow with a real checkpoint: the swapped engine generates
// what the original model generates (stories260K's golden output).
TEST(HotSwapDemoTest, CheckpointSwapGivesTheCheckpointsTokens) {
  const std::string dir = RLRT_SHARED_DIR "/models/stories260K";
  RunResult r = RunDemo("--model_dir=" + dir +
                        " --chat=false --prompt='Once upon a time' "
                        "--max_new_tokens=40");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text;
  EXPECT_EQ(r.phases["weights_swapped"]["source"], dir);
  EXPECT_TRUE(r.phases["weights_swapped"]["match"].get<bool>());
  std::ifstream in(dir + "/reference.json");
  const json ref = json::parse(in)["greedy_from_prompt"];
  const auto ids = ref["ids"].get<std::vector<int>>();
  const size_t prompt = ref["prompt_ids"].size();
  const std::vector<int> golden(ids.begin() + prompt,
                                ids.begin() + prompt + 40);
  EXPECT_EQ(r.phases["generate_result"]["output_ids"].get<std::vector<int>>(),
            golden);
}

TEST(HotSwapDemoTest, VirtualDevicesAndExplicitSpec) {
  RunResult r = RunDemo(
      "--num_virtual_devices=6 --partition=rollout=#0+#2+#4,actor=rest "
      "--max_new_tokens=4");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text;
  EXPECT_EQ(r.phases["partition"]["devices"], 6);
  EXPECT_EQ(r.phases["engine_ready_dummy"]["devices"].size(), 3u);
  EXPECT_TRUE(r.phases["weights_swapped"]["match"].get<bool>());
}

TEST(HotSwapDemoTest, BadFlagsFailCleanly) {
  for (const char* args :
       {"--partition=rollout=9,actor=rest", "--num_leaves=-1", "--scale=-1",
        "--partition=rollout=0-1,actor=1-2", "--preset=nope",
        "--model_dir=/nonexistent", "--max_new_tokens=0", "--temperature=-1",
        "--tokenizer_dir=/nonexistent"}) {
    RunResult r = RunDemo(args);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_FALSE(r.phases.count("generate_result")) << args;
  }
}

}  // namespace
