// Runs build/bin/grpo_gsm8k_10steps as a user would, on a small
// configuration, and checks its JSON lines, its files and its errors.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "tests/grpo_demo_run.h"
#include "tests/rollout_server_process.h"

namespace {

using nlohmann::json;
using rlrt::testing::RunDemo;
using rlrt::testing::RunResult;
using rlrt::testing::StartServer;

using rlrt::testing::kSmall;

std::filesystem::path TempDir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("rlrt_grpo_demo_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(GrpoDemoTest, RunsStepsEvaluatesSavesAndLogsMetrics) {
  const std::filesystem::path out = TempDir("run");
  const std::filesystem::path metrics = out.string() + ".jsonl";
  std::filesystem::remove(metrics);
  RunResult r = RunDemo(std::string(kSmall) +
                        "--steps=3 --eval_every=2 --eval_examples=4 "
                        "--metrics_out=" +
                        metrics.string() + " --save_dir=" + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.order, (std::vector<std::string>{
                         "partition", "engine_ready_dummy", "eval", "grpo_step",
                         "grpo_step", "eval", "grpo_step", "generate_result",
                         "summary"}));
  const std::vector<json> steps = r.Phase("grpo_step");
  ASSERT_EQ(steps.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const json& s = steps[i];
    EXPECT_EQ(s["step"], i + 1);
    EXPECT_EQ(s["policy_version"], i + 1);
    EXPECT_EQ(s["sync"]["version"], i + 1);
    EXPECT_LE(s["version_lag"].get<int>(), 1);
    EXPECT_LE(s["rollout_tokens"].get<int>(), 2 * 2 * 8);
    EXPECT_GT(s["train_tokens"].get<int>(), 0);
    for (const char* key :
         {"strict_format", "lenient_format", "correctness", "close_answer"})
      EXPECT_TRUE(s["rewards"].contains(key)) << key;
    for (const char* key : {"reward_mean",
                            "reward_std",
                            "advantage_mean",
                            "advantage_std",
                            "completion_length_mean",
                            "completion_length_max",
                            "truncated_fraction",
                            "loss",
                            "kl",
                            "clip_fraction",
                            "grad_norm",
                            "learning_rate",
                            "rollout_tokens_per_s",
                            "train_tokens_per_s",
                            "rollout_seconds",
                            "train_seconds",
                            "reference_seconds",
                            "sync_seconds",
                            "wait_seconds",
                            "step_seconds"})
      EXPECT_TRUE(s.contains(key)) << key;
  }
  // The first batch is sampled with the weights the trainer starts from.
  EXPECT_EQ(steps[0]["ratio_mean"], 1.0);
  EXPECT_EQ(steps[0]["version_lag"], 0);
  const std::vector<json> evals = r.Phase("eval");
  EXPECT_EQ(evals[0]["step"], 0);
  EXPECT_EQ(evals[0]["examples"], 4);
  EXPECT_EQ(evals[1]["step"], 2);
  const json summary = r.Phase("summary")[0];
  EXPECT_EQ(summary["steps"], 3);
  EXPECT_EQ(summary["sampler_weight_version"], 3);
  EXPECT_EQ(summary["updates_applied"], 3);
  EXPECT_EQ(summary["updates_refused"], 0);
  EXPECT_EQ(r.Phase("generate_result")[0]["meta_info"]["weight_version"], 3);

  // --metrics_out holds the same lines.
  std::ifstream file(metrics);
  std::string line;
  int logged_steps = 0;
  while (std::getline(file, line)) {
    const json j = json::parse(line);
    if (j["phase"] == "grpo_step") {
      EXPECT_EQ(j["step"], steps[logged_steps]["step"]);
      EXPECT_EQ(j["loss"], steps[logged_steps]["loss"]);
      ++logged_steps;
    }
  }
  EXPECT_EQ(logged_steps, 3);
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json"})
    EXPECT_TRUE(std::filesystem::exists(out / name)) << name;

  // The saved policy as a checkpoint: the trainer loads it and pushes it
  // into the dummy-weight sampler before training goes on.
  RunResult resumed =
      RunDemo(std::string(kSmall) + "--steps=1 --model_dir=" + out.string());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(resumed.order,
            (std::vector<std::string>{"partition", "engine_ready_dummy",
                                      "weights_swapped", "grpo_step",
                                      "generate_result", "summary"}));
  const json swap = resumed.Phase("weights_swapped")[0];
  EXPECT_EQ(swap["version"], 1);
  EXPECT_EQ(swap["source"], out.string());
  EXPECT_TRUE(swap["match"].get<bool>());
  const json step = resumed.Phase("grpo_step")[0];
  EXPECT_EQ(step["sampled_versions"], json::array({1, 1}));
  EXPECT_EQ(step["sync"]["version"], 2);
  std::filesystem::remove_all(out);
  std::filesystem::remove(metrics);
}

// A serial run of three steps: every step's trainer logprobs equal the
// sampler's bit for bit (mismatch 0, ratios exactly 1), and the weights
// changed at every step.
void ExpectThreeStepsExactlyOnPolicy(const RunResult& r) {
  const std::vector<json> steps = r.Phase("grpo_step");
  ASSERT_EQ(steps.size(), 3u);
  std::set<std::string> hashes;
  for (const json& s : steps) {
    EXPECT_EQ(s["logprob_mismatch_max"].get<double>(), 0.0) << s.dump();
    EXPECT_EQ(s["ratio_min"].get<double>(), 1.0) << s.dump();
    EXPECT_EQ(s["ratio_max"].get<double>(), 1.0) << s.dump();
    hashes.insert(s["sync"]["content_hash"].get<std::string>());
  }
  EXPECT_EQ(hashes.size(), 3u) << "the weights did not change every step";
}

// The training-inference mismatch, measured every step on the real Qwen3
// tokenizer and the qwen3-tiny shape: with fresh rollouts (staleness 0) and
// the sync on, the trainer's logprobs are the sampler's, bit for bit. Weight
// decay changes the weights every step even where the rewards are all 0,
// so each step samples with newly pushed weights.
TEST(GrpoDemoTest, SerialRunHasNoTrainingInferenceMismatch) {
  RunResult r = RunDemo(std::string(kSmall) +
                        "--steps=3 --max_staleness=0 --weight_decay=0.5 "
                        "--learning_rate=1e-2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectThreeStepsExactlyOnPolicy(r);
  for (const json& s : r.Phase("grpo_step")) {
    EXPECT_EQ(s["version_lag"], 0) << s.dump();
    EXPECT_EQ(s["logprob_mismatch_mean"].get<double>(), 0.0) << s.dump();
  }

  // The same run overlapped: batches sampled with the previous weights
  // show the lag in the metric.
  RunResult lagged = RunDemo(std::string(kSmall) +
                             "--steps=3 --max_staleness=1 --weight_decay=0.5 "
                             "--learning_rate=1e-2");
  ASSERT_EQ(lagged.exit_code, 0) << lagged.output;
  for (const json& s : lagged.Phase("grpo_step")) {
    if (s["version_lag"] == 1) {
      EXPECT_GT(s["logprob_mismatch_max"].get<double>(), 0.0) << s.dump();
    }
  }
}

// The same in BF16 (--dtype=bfloat16): the engine says so, and with F32
// master weights and the BF16 compute copy pushed to the sampler, the
// trainer's logprobs still equal the sampler's bit for bit.
TEST(GrpoDemoTest, Bf16SerialRunHasNoTrainingInferenceMismatch) {
  RunResult r = RunDemo(std::string(kSmall) +
                        "--steps=3 --max_staleness=0 --weight_decay=0.5 "
                        "--learning_rate=1e-2 --dtype=bfloat16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<json> ready = r.Phase("engine_ready_dummy");
  ASSERT_EQ(ready.size(), 1u) << r.output;
  EXPECT_EQ(ready[0]["dtype"], "bfloat16");
  EXPECT_EQ(ready[0]["kv_cache_dtype"], "bfloat16");
  ExpectThreeStepsExactlyOnPolicy(r);
  EXPECT_EQ(
      RunDemo(std::string(kSmall) + "--steps=1 --dtype=float16").exit_code, 1);
}

// --lora_rank: the learner trains an adapter on the frozen base, which the
// engine reads in place; each sync carries the adapter alone, and the run
// is still exactly on-policy. --save_dir then holds a PEFT adapter.
TEST(GrpoDemoTest, LoraRunIsExactlyOnPolicyAndSavesAPeftAdapter) {
  const std::filesystem::path dir = TempDir("lora");
  RunResult r = RunDemo(std::string(kSmall) +
                        "--steps=3 --max_staleness=0 --weight_decay=0.5 "
                        "--learning_rate=1e-2 --lora_rank=4 --lora_alpha=8 "
                        "--lora_target_modules=q_proj,v_proj,down_proj "
                        "--save_dir=" +
                        dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<json> ready = r.Phase("engine_ready_dummy");
  ASSERT_EQ(ready.size(), 1u) << r.output;
  EXPECT_EQ(ready[0]["base_shared"], true);
  ExpectThreeStepsExactlyOnPolicy(r);
  const json first = r.Phase("weights_swapped")[0];
  EXPECT_EQ(first["source"], "lora_init");
  for (const json& s : r.Phase("grpo_step")) {
    EXPECT_EQ(s["version_lag"], 0) << s.dump();
    // Only the adapter travels: the same few bytes every sync.
    EXPECT_EQ(s["sync"]["bytes"], first["bytes"]) << s.dump();
  }
  EXPECT_LT(first["bytes"].get<int64_t>(), 1 << 20);
  EXPECT_EQ(r.Phase("summary")[0]["lora_rank"], 4);
  std::ifstream config(dir / "adapter_config.json");
  ASSERT_TRUE(config.good());
  const json adapter = json::parse(config);
  EXPECT_EQ(adapter["r"], 4);
  EXPECT_EQ(adapter["lora_alpha"], 8.0);
  EXPECT_EQ(adapter["target_modules"].size(), 3u);
  EXPECT_TRUE(std::filesystem::exists(dir / "adapter_model.safetensors"));
  std::filesystem::remove_all(dir);

  for (const std::string& bad :
       {std::string("--lora_rank=4 --lora_target_modules=bogus_proj"),
        std::string("--lora_rank=4 --lora_version_policy=newest"),
        std::string("--lora_rank=-1")}) {
    RunResult refused = RunDemo(std::string(kSmall) + "--steps=1 " + bad);
    EXPECT_EQ(refused.exit_code, 1) << bad << "\n" << refused.output;
    EXPECT_EQ(refused.Phase("grpo_step").size(), 0u) << bad;
  }
}

TEST(GrpoDemoTest, SupervisedWarmStartIsPushedBeforeGrpo) {
  RunResult r = RunDemo(std::string(kSmall) +
                        "--steps=1 --sft_steps=2 --sft_batch_size=2 "
                        "--learning_rate=1e-3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<json> sft = r.Phase("sft_step");
  ASSERT_EQ(sft.size(), 2u);
  EXPECT_GT(sft[0]["loss"].get<double>(), 0);
  EXPECT_GT(sft[0]["tokens"].get<int>(), 0);
  const json swap = r.Phase("weights_swapped")[0];
  EXPECT_EQ(swap["source"], "sft");
  EXPECT_EQ(swap["version"], 1);
  EXPECT_EQ(r.Phase("grpo_step")[0]["sampled_versions"], json::array({1, 1}));
}

TEST(GrpoDemoTest, BadFlagsAndDataFailWithTheReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--num_generations=1", "--num_generations"},
      {"--steps=0", "--steps"},
      {"--temperature=0", "--temperature"},
      {"--gsm8k_dir=/nonexistent", "/nonexistent/train.jsonl"},
      {"--load_format=safetensors", "--load_format=dummy"},
      {"--loss_type=bogus", "bogus"},
      {"--lr_schedule=bogus", "bogus"},
      {"--partition=rollout=9,actor=9", "partition spec"},
      {"--max_prompt_length=5", "max_prompt_length"},
      {"--model_dir=/nonexistent", "/nonexistent"},
  };
  for (const auto& [flags, needle] : cases) {
    RunResult r = RunDemo(std::string(kSmall) + flags);
    EXPECT_EQ(r.exit_code, 1) << flags << "\n" << r.output;
    EXPECT_NE(r.output.find("grpo_gsm8k_10steps: "), std::string::npos)
        << flags << "\n"
        << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << flags << "\n"
                                                        << r.output;
    EXPECT_EQ(r.Phase("grpo_step").size(), 0u) << flags;
  }
}

}  // namespace

namespace {

// --rollout_servers: the same loop with rollouts from a rollout_server
// process over HTTP and weights pushed through /admin/update_params.
// Float32 pushes as one UpdateParams each; BF16 ones as streams of 64 KiB
// chunks (qwen3-tiny is about 10 MB in BF16: some 150 chunks per push).
TEST(GrpoDemoTest, RemoteRolloutsThroughARolloutServer) {
  struct Case {
    std::string server_flags;
    std::string demo_flags;
  };
  const std::vector<Case> cases = {
      {"", ""},
      {"--dtype=bfloat16", "--dtype=bfloat16 --update_chunk_bytes=65536"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.demo_flags);
    const auto [pid, port] = StartServer(c.server_flags);
    ASSERT_GT(pid, 0);
    RunResult r =
        RunDemo(std::string(kSmall) + "--steps=2 " + c.demo_flags +
                " --rollout_servers=http://127.0.0.1:" + std::to_string(port));
    kill(pid, SIGTERM);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.order,
              (std::vector<std::string>{
                  "partition", "rollout_servers", "weights_swapped",
                  "grpo_step", "grpo_step", "generate_result", "summary"}));
    const std::vector<json> steps = r.Phase("grpo_step");
    // On-policy over HTTP too: the server's logprobs are the trainer's.
    EXPECT_EQ(steps[0]["ratio_mean"], 1.0);
    EXPECT_EQ(steps[0]["logprob_mismatch_max"], 0.0);
    EXPECT_EQ(steps[0]["sync"]["version"], 2);
    EXPECT_EQ(steps[1]["sync"]["version"], 3);
    EXPECT_EQ(r.Phase("summary")[0]["sampler_weight_version"], 3);
  }
  // A trainer whose dtype differs from the server's is refused with the
  // reason, not half-applied.
  const auto [pid, port] = StartServer("");
  ASSERT_GT(pid, 0);
  RunResult mixed = RunDemo(std::string(kSmall) +
                            "--steps=1 --dtype=bfloat16 "
                            "--rollout_servers=http://127.0.0.1:" +
                            std::to_string(port));
  kill(pid, SIGTERM);
  EXPECT_EQ(mixed.exit_code, 1) << mixed.output;
  EXPECT_NE(mixed.output.find("dtype"), std::string::npos) << mixed.output;
  // Unreachable servers fail with the reason.
  RunResult bad =
      RunDemo(std::string(kSmall) + "--rollout_servers=http://127.0.0.1:1");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("127.0.0.1:1"), std::string::npos) << bad.output;
}

// --lora_rank over HTTP: the server must serve the trainer's very base
// (same preset and seed here); each sync is then the adapter alone, and
// rollouts stay exactly on-policy. A server with another base is refused
// before anything is trained.
TEST(GrpoDemoTest, RemoteLoraRolloutsGetTheAdapterAlone) {
  const std::string lora = std::string(kSmall) +
                           "--steps=2 --max_staleness=0 --weight_decay=0.5 "
                           "--learning_rate=1e-2 --lora_rank=4 "
                           "--rollout_servers=http://127.0.0.1:";
  const auto [pid, port] = StartServer("--seed=3");
  ASSERT_GT(pid, 0);
  RunResult r = RunDemo(lora + std::to_string(port));
  kill(pid, SIGTERM);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json first = r.Phase("weights_swapped")[0];
  EXPECT_EQ(first["source"], "lora_init");
  const std::vector<json> steps = r.Phase("grpo_step");
  ASSERT_EQ(steps.size(), 2u);
  for (const json& s : steps) {
    EXPECT_EQ(s["logprob_mismatch_max"], 0.0) << s.dump();
    EXPECT_EQ(s["sync"]["bytes"], first["bytes"]) << s.dump();
  }
  const auto [other_pid, other_port] = StartServer("--seed=4");
  ASSERT_GT(other_pid, 0);
  RunResult other = RunDemo(lora + std::to_string(other_port));
  kill(other_pid, SIGTERM);
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_NE(other.output.find("content hash"), std::string::npos)
      << other.output;
  EXPECT_EQ(other.Phase("grpo_step").size(), 0u);
}

}  // namespace

namespace {

// Checkpoint and resume: a run SIGKILLed right after its step-2 checkpoint
// and restarted with --resume produces the same steps 3 and 4 (metrics and
// final weights and optimizer state, bit for bit) as a run never
// interrupted. Serial (--max_staleness=0) so sampling does not depend on
// timing; weight decay makes the policy drift from the reference, so the
// KL term gives gradients even though dummy weights earn no reward.
// Runs `extra` for 4 steps whole, and killed after step 2 then resumed:
// the resumed steps' metrics and the step-4 `files` must be identical.
// Leaves both checkpoint directories for the caller's further checks.
void ExpectResumeContinuesExactly(const std::string& extra,
                                  const std::vector<std::string>& files,
                                  const std::filesystem::path& whole,
                                  const std::filesystem::path& killed) {
  const std::string flags = std::string(kSmall) + extra +
                            " --steps=4 --max_staleness=0 "
                            "--learning_rate=1e-2 --weight_decay=0.1 "
                            "--checkpoint_every=2 --checkpoint_dir=";
  RunResult a = RunDemo(flags + whole.string());
  ASSERT_EQ(a.exit_code, 0) << a.output;
  RunResult b =
      RunDemo(flags + killed.string() + " --debug_sigkill_after_step=2");
  EXPECT_NE(b.exit_code, 0);  // Killed, not a clean exit.
  EXPECT_EQ(b.Phase("grpo_step").size(), 2u);
  RunResult c = RunDemo(flags + killed.string() + " --resume");
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_EQ(c.Phase("resumed")[0]["step"], 2);
  const std::vector<json> want = a.Phase("grpo_step"),
                          got = c.Phase("grpo_step");
  ASSERT_EQ(want.size(), 4u);
  ASSERT_EQ(got.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    for (const char* key :
         {"step", "loss", "kl", "grad_norm", "ratio_mean", "reward_mean",
          "policy_version", "sampled_versions", "rollout_tokens"})
      EXPECT_EQ(got[i][key], want[i + 2][key]) << key;
  }
  EXPECT_GT(want[2]["grad_norm"].get<double>(), 0);
  auto bytes = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  for (const std::string& file : files) {
    const std::string saved = bytes(whole / "step-00000004" / file);
    EXPECT_FALSE(saved.empty()) << file;
    EXPECT_EQ(saved, bytes(killed / "step-00000004" / file)) << file;
  }
}

TEST(GrpoDemoTest, ResumeAfterSigkillContinuesExactly) {
  const std::filesystem::path whole = TempDir("whole"),
                              killed = TempDir("killed");
  ExpectResumeContinuesExactly(
      "", {"model.safetensors", "optimizer.safetensors"}, whole, killed);
  const std::string flags =
      std::string(kSmall) +
      "--steps=4 --max_staleness=0 --learning_rate=1e-2 --weight_decay=0.1 "
      "--checkpoint_every=2 --checkpoint_dir=";
  // Resuming where nothing is left, or with other flags, is refused.
  RunResult done = RunDemo(flags + whole.string() + " --resume");
  EXPECT_EQ(done.exit_code, 1);
  RunResult other = RunDemo(flags + killed.string() + " --resume --seed=4");
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.output.find("same flags"), std::string::npos);
  RunResult none =
      RunDemo(std::string(kSmall) + "--resume --checkpoint_dir=/nonexistent");
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("no checkpoint"), std::string::npos);
  std::filesystem::remove_all(whole);
  std::filesystem::remove_all(killed);
}

TEST(GrpoDemoTest, LoraResumeAfterSigkillContinuesExactly) {
  const std::filesystem::path whole = TempDir("lora_whole"),
                              killed = TempDir("lora_killed");
  // The SFT warm start moves the adapter off zero, so the GRPO steps have
  // a KL gradient to follow (dummy weights earn no reward).
  const std::string lora =
      "--lora_rank=4 --lora_alpha=8 --sft_steps=2 --sft_batch_size=2";
  ExpectResumeContinuesExactly(
      lora, {"adapter_model.safetensors", "optimizer.safetensors"}, whole,
      killed);
  EXPECT_FALSE(
      std::filesystem::exists(whole / "step-00000004" / "model.safetensors"));
  // The adapter checkpoint resumes only as a LoRA run, and a full one only
  // as a full run.
  RunResult full =
      RunDemo(std::string(kSmall) +
              "--steps=6 --resume --checkpoint_dir=" + whole.string());
  EXPECT_EQ(full.exit_code, 1);
  EXPECT_NE(full.output.find("holds a LoRA adapter"), std::string::npos)
      << full.output;
  std::filesystem::remove_all(whole);
  std::filesystem::remove_all(killed);
}

}  // namespace
