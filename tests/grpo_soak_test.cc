// A short run of build/bin/grpo_soak (the 20-minute soak's machinery in
// under a minute): two rollout_server processes, the GRPO trainer against
// them, reloads from the trainer's checkpoints, and one server SIGKILLed and
// restarted. The trainer must finish its time budget with every rollout
// answered, the restarted server must be caught up, and nothing may die
// unasked.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

using nlohmann::json;

TEST(GrpoSoakTest, SurvivesReloadsAndAKilledServer) {
  const std::string work = (std::filesystem::temp_directory_path() /
                            ("rlrt_soak_" + std::to_string(getpid())))
                               .string();
  std::filesystem::remove_all(work);
  const std::string command =
      std::string(GRPO_SOAK_PATH) +
      " --minutes=0.6 --reload_every_seconds=3 --kill_at_seconds=10"
      " --restart_after_seconds=2 --rss_every_seconds=2 --warmup_seconds=8"
      " --max_rss_growth_fraction=1 --work_dir=" +
      work +
      " --trainer_args='--batch_size=2 --num_generations=2"
      " --max_new_tokens=8 --max_prompt_length=200 --seed=3'"
      " 2>&1";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[1 << 16];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) output += buf;
  const int status = pclose(pipe);
  std::vector<json> lines;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("phase")) lines.push_back(j);
  }
  auto phase = [&](const std::string& name) {
    std::vector<json> out;
    for (const json& j : lines)
      if (j["phase"] == name) out.push_back(j);
    return out;
  };
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  const std::vector<json> summaries = phase("soak_summary");
  ASSERT_EQ(summaries.size(), 1u) << output;
  const json& s = summaries[0];
  EXPECT_TRUE(s["ok"].get<bool>()) << s.dump(1);
  EXPECT_EQ(s["trainer_exit_status"], 0);
  EXPECT_EQ(s["servers_killed"], 1);
  EXPECT_EQ(s["servers_exited_unasked"], 0);
  EXPECT_EQ(s["reloads_failed"], 0) << s.dump(1);
  EXPECT_GE(
      s["reloads_done"].get<int>() + s["reloads_refused_stale"].get<int>(), 1)
      << s.dump(1);
  EXPECT_GE(s["grpo_steps"].get<int>(), 3);
  // Rollouts sampled by the server processes with the trainer's current
  // weights score exactly as the trainer scores them.
  EXPECT_GE(s["logprob_mismatch"]["fresh_steps"].get<int>(), 1) << s.dump(1);
  EXPECT_EQ(s["logprob_mismatch"]["max_fresh"].get<double>(), 0.0) << s.dump(1);
  const json& trainer = s["trainer_summary"];
  EXPECT_TRUE(trainer["stopped_early"].get<bool>());
  // The restarted server came back at version 0 and was brought up to the
  // trainer's weights (by the client's catch-up, or by the next push when
  // nothing noticed it was gone): at the end every server holds the
  // trainer's final version and the same content.
  EXPECT_TRUE(s["servers_agree"].get<bool>()) << s.dump(1);
  ASSERT_EQ(s["servers_final"].size(), 2u);
  for (const json& server : s["servers_final"])
    EXPECT_EQ(server["weight_version"], trainer["sampler_weight_version"]);
  ASSERT_EQ(phase("server_restarted").size(), 1u);
  EXPECT_TRUE(phase("server_restarted")[0]["healthy"].get<bool>());
  EXPECT_GE(phase("rss").size(), 3u);
  std::filesystem::remove_all(work);
}

}  // namespace
