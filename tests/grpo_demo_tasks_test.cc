// The demo on tasks of the user's own: a JSON-lines dataset with its own
// fields and answer format, an external reward service (the reference
// Python server in examples/), and DAPO's dynamic sampling.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/grpo_demo_run.h"
#include "tests/reward_server_process.h"

namespace {

using rlrt::testing::RunDemo;
using rlrt::testing::RunResult;
using rlrt::testing::StartRewardServer;

using rlrt::testing::kSmall;

std::string WriteDataset(const std::string& name, const std::string& text) {
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("rlrt_tasks_" + name + "_" + std::to_string(getpid()) + ".jsonl"))
          .string();
  std::ofstream(path) << text;
  return path;
}

const char kArithmetic[] =
    "{\"problem\": \"What is 2 + 3?\", \"solution\": 5}\n"
    "{\"problem\": \"What is 10 - 4?\", \"solution\": 6}\n"
    "{\"problem\": \"What is 3 times 3?\", \"solution\": 9}\n"
    "{\"problem\": \"Half of 8?\", \"solution\": \"\\\\boxed{4}\"}\n";

TEST(GrpoDemoTasksTest, TrainsOnAJsonlDatasetWithItsOwnFieldsAndFormat) {
  const std::string data = WriteDataset("own", kArithmetic);
  RunResult r = RunDemo(std::string(kSmall) + "--steps=2 --dataset=" + data +
                        " --eval_dataset=" + data +
                        " --prompt_field=problem --answer_field=solution "
                        "--answer_format=boxed --sft_steps=1 "
                        "--sft_batch_size=2 --eval_every=2 --eval_examples=4 "
                        "--reward_regex=0.5 --reward_regex_pattern=boxed "
                        "--reward_length=0.1 --length_target=4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto steps = r.Phase("grpo_step");
  ASSERT_EQ(steps.size(), 2u);
  for (const char* part : {"strict_format", "lenient_format", "correctness",
                           "close_answer", "regex", "length"}) {
    EXPECT_TRUE(steps[0]["rewards"].contains(part)) << part;
  }
  // The dataset's prompts, asked for \boxed{}: shown in the sample line.
  const auto shown = r.Phase("generate_result");
  ASSERT_FALSE(shown.empty());
  EXPECT_NE(
      std::string(kArithmetic).find(shown[0]["question"].get<std::string>()),
      std::string::npos);
  ASSERT_EQ(r.Phase("eval").size(), 2u);  // Before step 1 and after step 2.
  EXPECT_EQ(r.Phase("eval")[0]["examples"], 4);
  std::filesystem::remove(data);
}

TEST(GrpoDemoTasksTest, BadTaskFlagsAreRefusedBeforeAnythingStarts) {
  const std::string data = WriteDataset("bad", kArithmetic);
  const struct {
    std::string flags;
    const char* error;
  } cases[] = {
      {"--answer_format=latex", "unknown answer format"},
      {"--prompt_field=problem", "go with --dataset"},
      {"--dataset=" + data + " --prompt_field=nope", ":1: missing string"},
      {"--reward_regex=1 '--reward_regex_pattern=(['", "bad reward regex"},
      {"--reward_length=1", "no target length"},
      {"--reward_url=ftp://x", "must start with http://"},
      {"--dynamic_sampling --max_sampling_rounds=0", "max_sampling_rounds"},
  };
  for (const auto& c : cases) {
    RunResult r = RunDemo(std::string(kSmall) + "--steps=1 " + c.flags);
    EXPECT_EQ(r.exit_code, 1) << c.flags;
    EXPECT_NE(r.output.find(c.error), std::string::npos) << c.flags << "\n"
                                                         << r.output;
    EXPECT_TRUE(r.Phase("grpo_step").empty()) << c.flags;
  }
  std::filesystem::remove(data);
}

TEST(GrpoDemoTasksTest, AddsTheRewardServicesRewards) {
  auto [pid, port] = StartRewardServer();
  ASSERT_GT(pid, 0) << "the reference reward server did not start";
  // Built-in rewards off: the step's reward is the service's alone.
  RunResult r =
      RunDemo(std::string(kSmall) +
              "--steps=2 --reward_strict_format=0 "
              "--reward_lenient_format=0 --reward_correctness=0 "
              "--reward_close_answer=0 --reward_url=http://127.0.0.1:" +
              std::to_string(port) + "/score");
  kill(pid, SIGTERM);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& step : r.Phase("grpo_step")) {
    ASSERT_TRUE(step["rewards"].contains("remote")) << step.dump();
    EXPECT_DOUBLE_EQ(step["reward_mean"].get<double>(),
                     step["rewards"]["remote"].get<double>());
  }
}

TEST(GrpoDemoTasksTest, AnUnreachableRewardServiceStopsTheRunWithTheReason) {
  auto [pid, port] = StartRewardServer();
  ASSERT_GT(pid, 0);
  kill(pid, SIGTERM);  // The port is now closed.
  usleep(200 * 1000);
  RunResult r = RunDemo(std::string(kSmall) +
                        "--steps=1 --reward_retries=1 --reward_url=http://"
                        "127.0.0.1:" +
                        std::to_string(port) + "/score");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("reward service http://127.0.0.1:" +
                          std::to_string(port) + "/score"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("after 2 attempts"), std::string::npos) << r.output;
  EXPECT_TRUE(r.Phase("grpo_step").empty());
}

TEST(GrpoDemoTasksTest, DynamicSamplingReportsRoundsAndDroppedGroups) {
  RunResult r = RunDemo(std::string(kSmall) +
                        "--steps=2 --dynamic_sampling --max_sampling_rounds=3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& step : r.Phase("grpo_step")) {
    const int rounds = step["sampling_rounds"].get<int>();
    EXPECT_GE(rounds, 1);
    EXPECT_LE(rounds, 3);
    // Dummy weights earn equal rewards: groups are dropped and the rounds
    // run out, so flat groups fill the batch.
    EXPECT_EQ(step["groups_dropped"].get<int>() > 0, rounds > 1);
    EXPECT_GE(step["groups_padded"].get<int>(), 0);
  }
}

}  // namespace
