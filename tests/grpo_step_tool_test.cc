// Runs build/bin/grpo_step on rollouts of the tiny untied Qwen3 fixture and
// checks what it writes against an in-process GrpoLearner given the same
// batch and options (gradients and weights, bit for bit, with a different
// worker count), and its metrics against values computed here by hand.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "models/io/checkpoint.h"
#include "models/io/safetensors.h"
#include "models/test_util.h"
#include "models/train/train_test_util.h"
#include "trainer_bridge/grpo_learner.h"

namespace rlrt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kGroups = 2;
constexpr int kGroupSize = 3;
constexpr int kVocab = 96;  // The fixture's config.json.

struct Output {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The tool's stdout and stderr go to files in `dir`.
Output RunTool(const std::string& args, const std::string& dir) {
  const std::string out = dir + "/stdout";
  const std::string err = dir + "/stderr";
  const int status = std::system(
      (std::string(GRPO_STEP_PATH) + " " + args + " >" + out + " 2>" + err)
          .c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadAll(out),
          ReadAll(err)};
}

// A fresh, empty scratch directory for one test.
std::string ScratchDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("grpo_step_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// Completions of kGroups prompts, kGroupSize each, in batch order (group by
// group), with rewards that differ within each group.
std::vector<Completion> MakeBatch() {
  std::mt19937 rng(5);
  std::vector<Completion> batch;
  for (int g = 0; g < kGroups; ++g) {
    std::vector<int32_t> prompt(4 + 3 * g);
    for (int32_t& id : prompt) id = static_cast<int32_t>(rng() % kVocab);
    for (int k = 0; k < kGroupSize; ++k) {
      Completion c;
      c.prompt = prompt;
      c.tokens.resize(3 + 2 * k + g);
      for (int32_t& id : c.tokens) id = static_cast<int32_t>(rng() % kVocab);
      c.reward = 0.25 * ((k * 7 + g * 3) % 5);
      c.truncated = (g == 1 && k == 2);
      batch.push_back(std::move(c));
    }
  }
  return batch;
}

// The fixture's own logprobs of each completion token at `temperature`, so
// the rollouts are exactly on-policy.
void FillTrueLogprobs(const LoadedCheckpoint& model, float temperature,
                      std::vector<Completion>& batch) {
  testing::OwnedBatch sequences;
  for (const Completion& c : batch) {
    std::vector<int32_t> tokens = c.prompt;
    tokens.insert(tokens.end(), c.tokens.begin(), c.tokens.end());
    std::vector<int32_t> targets;
    for (size_t t = c.prompt.size() - 1; t + 1 < tokens.size(); ++t)
      targets.push_back(static_cast<int32_t>(t));
    sequences.Add(tokens, targets);
  }
  auto mesh = testing::MakeMesh(1);
  auto trainable =
      testing::MakeTrainable(model.config, model.leaves, mesh.get());
  ASSERT_NE(trainable, nullptr);
  std::vector<float> logprobs(sequences.num_targets());
  ASSERT_TRUE(
      trainable->Forward(sequences.sequences, temperature, logprobs).ok());
  size_t at = 0;
  for (Completion& c : batch) {
    c.behaviour_logprobs.assign(logprobs.begin() + at,
                                logprobs.begin() + at + c.tokens.size());
    at += c.tokens.size();
  }
}

json LineOf(const Completion& c, int group) {
  json line = {{"group", group},
               {"prompt_ids", c.prompt},
               {"completion_ids", c.tokens},
               {"reward", c.reward},
               {"behaviour_logprobs", c.behaviour_logprobs},
               {"text", "ignored"}};
  if (c.truncated) line["truncated"] = true;
  return line;
}

// The file interleaves the groups (line 2k+1 and 2k+2 hold completion k of
// groups 0 and 1), so the tool has to regroup them.
std::vector<std::string> RolloutLines(const std::vector<Completion>& batch) {
  std::vector<std::string> lines;
  for (int k = 0; k < kGroupSize; ++k)
    for (int g = 0; g < kGroups; ++g)
      lines.push_back(LineOf(batch[g * kGroupSize + k], g).dump());
  return lines;
}

std::string WriteLines(const std::string& path,
                       const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const std::string& line : lines) out << line << "\n";
  return path;
}

bool SameLeafBytes(const SafetensorsFile& file, const ParamLeaves& leaves,
                   std::string* why) {
  if (file.tensors().size() != leaves.size()) {
    *why = "tensor count differs";
    return false;
  }
  for (size_t i = 0; i < leaves.size(); ++i) {
    const SafetensorsTensor* t = file.Find(leaves.spec(i).name);
    if (t == nullptr || t->dtype != DType::kF32 ||
        t->shape != leaves.spec(i).shape || t->data.size() != leaves.bytes(i) ||
        std::memcmp(t->data.data(), leaves.data(i), leaves.bytes(i)) != 0) {
      *why = "leaf " + leaves.spec(i).name + " differs";
      return false;
    }
  }
  return true;
}

double SquaredSum(const ParamLeaves& leaves) {
  double sum = 0;
  for (size_t i = 0; i < leaves.size(); ++i)
    for (float g : leaves.F32(i)) sum += double(g) * g;
  return sum;
}

struct Case {
  std::string name;
  std::string flags;    // For the tool.
  GrpoOptions options;  // The same, for the in-process learner.
};

std::vector<Case> Cases(const std::vector<Completion>& batch) {
  Case a{"token_mean_kl", "", {}};
  a.flags =
      "--temperature=0.7 --learning_rate=1e-3 --beta=0.04 "
      "--loss_type=dapo --max_grad_norm=0.5 "
      "--weight_decay=0.01 --num_virtual_devices=3";
  a.options.temperature = 0.7f;
  a.options.lr.peak = 1e-3;
  a.options.loss.beta = 0.04;
  a.options.loss.loss_type = LossType::kDapo;
  a.options.adamw.max_grad_norm = 0.5;
  a.options.adamw.weight_decay = 0.01;

  Case b{"dr_grpo_two_iterations", "", {}};
  b.flags =
      "--learning_rate=2e-3 --num_iterations=2 --loss_type=dr_grpo "
      "--scale_rewards=false --drop_truncated --epsilon_high=0.3 "
      "--max_micro_batch_tokens=32";
  b.options.lr.peak = 2e-3;
  b.options.lr.total_steps = 2;
  b.options.num_iterations = 2;
  b.options.loss.loss_type = LossType::kDrGrpo;
  size_t longest = 0;
  for (const Completion& c : batch)
    longest = std::max(longest, c.tokens.size());
  b.options.loss.max_completion_length = static_cast<double>(longest);
  b.options.scale_rewards = false;
  b.options.loss.drop_truncated = true;
  b.options.loss.epsilon_high = 0.3;
  b.options.max_micro_batch_tokens = 32;  // Several micro-batches.
  return {a, b};
}

TEST(GrpoStepToolTest, MatchesAnInProcessLearnerAndTheHandComputedMetrics) {
  const LoadedCheckpoint fixture = testing::LoadFixture("qwen3_untied");
  ASSERT_EQ(fixture.config.vocab_size, kVocab);
  auto mesh = testing::MakeMesh(1);
  for (Case& c : Cases(MakeBatch())) {
    SCOPED_TRACE(c.name);
    std::vector<Completion> batch = MakeBatch();
    FillTrueLogprobs(fixture, c.options.temperature, batch);
    const std::string dir = ScratchDir(c.name);
    const std::string rollouts =
        WriteLines(dir + "/rollouts.jsonl", RolloutLines(batch));
    const std::string out_dir = dir + "/out";
    const std::string grads = dir + "/grads.safetensors";
    const Output run =
        RunTool("--model_dir=" + testing::FixtureDir("qwen3_untied") +
                    " --rollouts=" + rollouts + " --out_dir=" + out_dir +
                    " --dump_grads=" + grads + " " + c.flags,
                dir);
    ASSERT_EQ(run.exit_code, 0) << run.err;

    auto learner = GrpoLearner::Create(fixture.config, fixture.leaves,
                                       mesh.get(), nullptr, c.options);
    ASSERT_TRUE(learner.ok()) << learner.status();
    auto expected = (*learner)->Step(batch, kGroupSize);
    ASSERT_TRUE(expected.ok()) << expected.status();

    // (a) The dumped gradients are the learner's, bit for bit.
    auto dumped = SafetensorsFile::Open(grads);
    ASSERT_TRUE(dumped.ok()) << dumped.status();
    std::string why;
    EXPECT_TRUE(SameLeafBytes(*dumped, (*learner)->gradients(), &why)) << why;
    EXPECT_GT(SquaredSum((*learner)->gradients()), 0.0);

    // (b) The checkpoint holds the learner's new weights, not the old ones.
    auto saved = LoadCheckpoint(out_dir);
    ASSERT_TRUE(saved.ok()) << saved.status();
    EXPECT_TRUE(testing::SameBytes(saved->leaves, (*learner)->weights()));
    EXPECT_FALSE(testing::SameBytes(saved->leaves, fixture.leaves));

    // (c) Metrics against the file.
    const json line = json::parse(run.out, nullptr, false);
    ASSERT_TRUE(line.is_object()) << run.out;
    EXPECT_EQ(line["phase"], "grpo_step_offline");
    EXPECT_EQ(line["completions"], kGroups * kGroupSize);
    EXPECT_EQ(line["groups"], kGroups);
    EXPECT_EQ(line["out_dir"], out_dir);
    double sum = 0, sum2 = 0;
    int64_t tokens = 0;
    for (const Completion& x : batch) {
      sum += x.reward;
      sum2 += x.reward * x.reward;
      tokens += x.tokens.size();
    }
    const double mean = sum / batch.size();
    EXPECT_NEAR(line["reward_mean"].get<double>(), mean, 1e-12);
    EXPECT_NEAR(line["reward_std"].get<double>(),
                std::sqrt(sum2 / batch.size() - mean * mean), 1e-12);
    EXPECT_NEAR(line["completion_length_mean"].get<double>(),
                double(tokens) / batch.size(), 1e-12);
    EXPECT_DOUBLE_EQ(line["truncated_fraction"].get<double>(),
                     1.0 / batch.size());
    EXPECT_EQ(line["train_tokens"], tokens * c.options.num_iterations);
    // On-policy: every importance ratio is exactly 1, the KL to the
    // (identical) reference is 0, and nothing is clipped.
    EXPECT_EQ(line["ratio_mean"].get<double>(), 1.0);
    EXPECT_EQ(line["logprob_mismatch_max"].get<double>(), 0.0);
    EXPECT_EQ(line["kl"].get<double>(), 0.0);
    EXPECT_EQ(line["clip_fraction"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(line["learning_rate"].get<double>(), c.options.lr.peak);
    if (c.options.num_iterations == 1) {  // Else the dump is the last step's.
      EXPECT_NEAR(line["grad_norm"].get<double>(),
                  std::sqrt(SquaredSum((*learner)->gradients())),
                  1e-6 * line["grad_norm"].get<double>());
    }
    EXPECT_DOUBLE_EQ(line["loss"].get<double>(), expected->loss);
  }
}

// A model directory with tokenizer files (stories260K): out_dir gets them
// too, so it is a complete checkpoint; off-policy behaviour logprobs give the
// importance ratios computed here.
TEST(GrpoStepToolTest, CopiesTheTokenizerAndReportsOffPolicyRatios) {
  const std::string model_dir = RLRT_SHARED_DIR "/models/stories260K";
  auto model = LoadCheckpoint(model_dir);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<Completion> batch(2);
  for (int k = 0; k < 2; ++k) {
    batch[k].prompt = {1, 403, 407};
    batch[k].tokens = {123, 321, static_cast<int32_t>(300 + k)};
    batch[k].reward = k;
  }
  FillTrueLogprobs(*model, 1.0f, batch);
  double ratio_sum = 0, mismatch_max = 0, ratio_min = 1e9, ratio_max = 0;
  int tokens = 0;
  for (Completion& c : batch) {
    for (size_t t = 0; t < c.tokens.size(); ++t) {
      const float shifted = c.behaviour_logprobs[t] + 0.05f * (t + 1);
      c.behaviour_logprobs[t] = std::min(shifted, 0.0f);
    }
  }
  {
    std::vector<Completion> on_policy = batch;
    FillTrueLogprobs(*model, 1.0f, on_policy);
    for (size_t i = 0; i < batch.size(); ++i)
      for (size_t t = 0; t < batch[i].tokens.size(); ++t, ++tokens) {
        const double delta = double(on_policy[i].behaviour_logprobs[t]) -
                             batch[i].behaviour_logprobs[t];
        ratio_sum += std::exp(delta);
        mismatch_max = std::max(mismatch_max, std::abs(delta));
        ratio_min = std::min(ratio_min, std::exp(delta));
        ratio_max = std::max(ratio_max, std::exp(delta));
      }
  }
  const std::string dir = ScratchDir("stories");
  std::vector<std::string> lines;
  for (const Completion& c : batch) lines.push_back(LineOf(c, 7).dump());
  const std::string rollouts = WriteLines(dir + "/rollouts.jsonl", lines);
  // Twice into the same directory: a re-run replaces the earlier save.
  for (int run_index = 0; run_index < 2; ++run_index) {
    const Output run =
        RunTool("--model_dir=" + model_dir + " --rollouts=" + rollouts +
                    " --out_dir=" + dir + "/out",
                dir);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const json line = json::parse(run.out, nullptr, false);
    ASSERT_TRUE(line.is_object()) << run.out;
    EXPECT_NEAR(line["ratio_mean"].get<double>(), ratio_sum / tokens, 1e-6);
    // The training-inference mismatch: the shifts put in above.
    EXPECT_NEAR(line["logprob_mismatch_max"].get<double>(), mismatch_max, 1e-6);
    EXPECT_GT(mismatch_max, 0.1);
    EXPECT_NEAR(line["ratio_min"].get<double>(), ratio_min, 1e-6);
    EXPECT_NEAR(line["ratio_max"].get<double>(), ratio_max, 1e-6);
    // The sampler is said to have liked the tokens more: ratios below 1.
    EXPECT_LT(line["ratio_mean"].get<double>(), 0.99);
    EXPECT_EQ(line["groups"], 1);
    EXPECT_DOUBLE_EQ(line["reward_mean"].get<double>(), 0.5);
  }
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
    EXPECT_EQ(ReadAll(dir + "/out/" + name), ReadAll(model_dir + "/" + name))
        << name;
  auto saved = LoadCheckpoint(dir + "/out");
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_FALSE(testing::SameBytes(saved->leaves, model->leaves));
}

struct BadCase {
  std::string name;
  std::vector<std::string> lines;
  std::string error;  // Expected in stderr after the file name.
};

TEST(GrpoStepToolTest, BadInputFailsNamingTheLineAndWritesNothing) {
  const LoadedCheckpoint fixture = testing::LoadFixture("qwen3_untied");
  std::vector<Completion> batch = MakeBatch();
  FillTrueLogprobs(fixture, 1.0f, batch);
  const std::vector<std::string> good = RolloutLines(batch);
  auto edit = [&](size_t index, auto change) {
    std::vector<std::string> lines = good;
    json line = json::parse(lines[index]);
    change(line);
    lines[index] = line.dump();
    return lines;
  };
  std::vector<std::string> uneven = good;
  uneven.erase(uneven.begin() + 3);  // Group 1 loses a completion.
  std::vector<std::string> bad_json = good;
  bad_json[4] = "{\"group\": 0, \"prompt_ids\": [1, 2";
  std::vector<BadCase> cases = {
      {"uneven_groups", uneven, ":2: group 1 has 2 completions"},
      {"length_mismatch",
       edit(2, [](json& l) { l["behaviour_logprobs"].erase(0); }),
       ":3: \"behaviour_logprobs\" has"},
      {"id_out_of_range",
       edit(3, [](json& l) { l["completion_ids"][1] = kVocab; }),
       ":4: completion_ids[1] = 96 is outside the vocabulary"},
      {"negative_id", edit(0, [](json& l) { l["prompt_ids"][0] = -1; }),
       ":1: prompt_ids[0] = -1"},
      {"bad_json", bad_json, ":5: not valid JSON"},
      {"missing_reward", edit(0, [](json& l) { l.erase("reward"); }),
       ":1: \"reward\" must be"},
      {"string_group", edit(1, [](json& l) { l["group"] = "1"; }),
       ":2: \"group\" must be an integer"},
      {"ill_typed_truncated", edit(5, [](json& l) { l["truncated"] = "yes"; }),
       ":6: \"truncated\" must be"},
      {"positive_logprob",
       edit(5, [](json& l) { l["behaviour_logprobs"][0] = 0.5; }),
       ":6: behaviour_logprobs[0]"},
      {"prompt_differs_in_group",
       edit(2,
            [](json& l) {
              l["prompt_ids"][0] = 1 + l["prompt_ids"][0].get<int>() % 90;
            }),
       ":3: group 0 has a different prompt_ids"},
      {"empty", {"", "  "}, ": no completions"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string dir = ScratchDir("bad_" + c.name);
    const std::string rollouts = WriteLines(dir + "/rollouts.jsonl", c.lines);
    const Output run =
        RunTool("--model_dir=" + testing::FixtureDir("qwen3_untied") +
                    " --rollouts=" + rollouts + " --out_dir=" + dir +
                    "/out --dump_grads=" + dir + "/grads.safetensors",
                dir);
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.err.find(rollouts + c.error), std::string::npos) << run.err;
    EXPECT_TRUE(run.out.empty()) << run.out;
    EXPECT_FALSE(fs::exists(dir + "/out"));
    EXPECT_FALSE(fs::exists(dir + "/grads.safetensors"));
  }

  const std::string dir = ScratchDir("bad_missing_file");
  const Output missing = RunTool(
      "--model_dir=" + testing::FixtureDir("qwen3_untied") +
          " --rollouts=" + dir + "/nope.jsonl --out_dir=" + dir + "/out",
      dir);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find(dir + "/nope.jsonl: cannot open"),
            std::string::npos)
      << missing.err;
  EXPECT_FALSE(fs::exists(dir + "/out"));

  const std::string rollouts = WriteLines(dir + "/rollouts.jsonl", good);
  for (const char* flags :
       {"--loss_type=mean", "--temperature=0", "--num_iterations=0",
        "--sample_vocab=97", "--preset=qwen3-tiny"}) {
    const Output run = RunTool(
        "--model_dir=" + testing::FixtureDir("qwen3_untied") +
            " --rollouts=" + rollouts + " --out_dir=" + dir + "/out " + flags,
        dir);
    EXPECT_EQ(run.exit_code, 1) << flags;
    EXPECT_FALSE(fs::exists(dir + "/out")) << flags;
  }
}

}  // namespace
}  // namespace rlrt
