// Runs build/bin/grpo_gsm8k_10steps (GRPO_DEMO_PATH) as a user would and
// collects its JSON lines, for the tests that check the demo end to end.
#ifndef RLRT_TESTS_GRPO_DEMO_RUN_H_
#define RLRT_TESTS_GRPO_DEMO_RUN_H_

#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace rlrt::testing {

// A run small enough for tests: 2 prompts x 2 completions of 8 tokens.
inline constexpr char kSmall[] =
    "--batch_size=2 --num_generations=2 --max_new_tokens=8 "
    "--max_prompt_length=200 --seed=3 --eval_every=0 ";

struct RunResult {
  int exit_code = -1;
  std::vector<nlohmann::json> lines;
  std::vector<std::string> order;
  std::string output;  // stdout and stderr.

  std::vector<nlohmann::json> Phase(const std::string& name) const {
    std::vector<nlohmann::json> out;
    for (const nlohmann::json& j : lines)
      if (j["phase"] == name) out.push_back(j);
    return out;
  }
};

inline RunResult RunDemo(const std::string& args) {
  const std::string command =
      std::string(GRPO_DEMO_PATH) + " " + args + " 2>&1";
  RunResult r;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[1 << 16];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) r.output += buf;
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::istringstream lines(r.output);
  std::string line;
  while (std::getline(lines, line)) {
    nlohmann::json j =
        nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("phase")) continue;
    r.order.push_back(j["phase"]);
    r.lines.push_back(j);
  }
  return r;
}

}  // namespace rlrt::testing

#endif  // RLRT_TESTS_GRPO_DEMO_RUN_H_
