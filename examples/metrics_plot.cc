#include "examples/metrics_plot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

extern char** environ;

namespace rlrt {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kMaxLineBytes = size_t{1} << 20;

double Number(const json& line, const char* key) {
  const auto it = line.find(key);
  return it != line.end() && it->is_number() ? it->get<double>() : NAN;
}

// Writes `path` with one row per step: the columns named in `keys`, "NaN"
// where a line lacks one (gnuplot leaves a gap).
std::string Row(const json& line, const std::vector<std::string>& keys) {
  std::ostringstream row;
  row << Number(line, "step");
  for (const std::string& k : keys) {
    const double v = Number(line, k.c_str());
    row << ' ' << (std::isnan(v) ? std::string("NaN") : std::to_string(v));
  }
  return row.str();
}

// Runs gnuplot on `script` without a shell. Its messages (warnings about
// flat series, every step) go to `log`, and into the error if it fails.
Status RunGnuplot(const std::string& gnuplot, const std::string& script,
                  const std::string& log) {
  std::vector<std::string> args = {gnuplot, script};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, gnuplot.c_str(), &actions, nullptr,
                                   argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0)
    return UnavailableError("cannot run " + gnuplot +
                            " (install gnuplot-nox: make setup does)");
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    std::ifstream in(log);
    std::string messages((std::istreambuf_iterator<char>(in)), {});
    if (messages.size() > 2000) messages = messages.substr(0, 2000);
    return UnavailableError(gnuplot + " failed: " + messages);
  }
  return OkStatus();
}

}  // namespace

StatusOr<std::vector<json>> ReadMetricsFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot open " + path);
  std::vector<json> lines;
  std::string text;
  int64_t number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (text.size() > kMaxLineBytes)
      return InvalidArgumentError(path + " line " + std::to_string(number) +
                                  " is longer than 1 MiB");
    json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (line.is_discarded() || !line.is_object()) continue;
    const std::string phase = line.value("phase", "");
    if (phase == "grpo_step" || phase == "eval") lines.push_back(line);
  }
  return lines;
}

Status PlotMetrics(const std::vector<json>& lines, const std::string& out_png,
                   const std::string& gnuplot) {
  std::vector<json> steps, evals;
  std::set<std::string> parts;
  for (const json& line : lines) {
    if (!line.is_object()) continue;
    const std::string phase = line.value("phase", "");
    if (phase == "grpo_step" && line.contains("step")) {
      json flat = line;
      // Reward parts become columns of their own ("reward:<name>").
      if (line.contains("rewards") && line["rewards"].is_object()) {
        for (const auto& [name, value] : line["rewards"].items()) {
          if (!value.is_number()) continue;
          flat["reward:" + name] = value;
          parts.insert(name);
        }
      }
      steps.push_back(std::move(flat));
    } else if (phase == "eval" && line.contains("step")) {
      evals.push_back(line);
    }
  }
  if (steps.empty())
    return FailedPreconditionError(
        "no grpo_step lines to plot (give the JSON lines of a GRPO run, e.g. "
        "grpo_gsm8k_10steps --metrics_out)");

  const fs::path dir =
      fs::temp_directory_path() / ("rlrt_plot_" + std::to_string(getpid()));
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return InternalError("cannot create " + dir.string());
  std::vector<std::string> columns = {"reward_mean",
                                      "kl",
                                      "clip_fraction",
                                      "logprob_mismatch_max",
                                      "completion_length_mean",
                                      "entropy",
                                      "grad_norm",
                                      "rollout_seconds",
                                      "train_seconds",
                                      "reference_seconds",
                                      "sync_seconds",
                                      "wait_seconds"};
  for (const std::string& p : parts) columns.push_back("reward:" + p);
  {
    std::ofstream data(dir / "steps.dat");
    for (const json& s : steps) data << Row(s, columns) << '\n';
    std::ofstream eval(dir / "eval.dat");
    for (const json& e : evals) eval << Row(e, {"accuracy"}) << '\n';
    if (evals.empty()) eval << "NaN NaN\n";
  }
  auto col = [&](const std::string& name) {
    for (size_t i = 0; i < columns.size(); ++i)
      if (columns[i] == name) return std::to_string(i + 2);
    return std::string("2");
  };
  const std::string tmp_png = out_png + ".tmp";
  const std::string steps_dat = (dir / "steps.dat").string();
  std::ostringstream g;
  g << "set terminal pngcairo size 1500,1000 font 'Sans,9' noenhanced\n"
    << "set output '" << tmp_png << "'\n"
    << "set datafile missing 'NaN'\n"
    << "set key top left font ',8'\nset grid\nset xlabel 'step'\n"
    << "set multiplot layout 3,3 title 'GRPO run: " << steps.size()
    << " steps'\n";
  auto panel =
      [&](const std::string& title,
          const std::vector<std::pair<std::string, std::string>>& series) {
        g << "set title '" << title << "'\nplot ";
        for (size_t i = 0; i < series.size(); ++i) {
          if (i > 0) g << ", ";
          g << "'" << steps_dat << "' using 1:" << col(series[i].first)
            << " with linespoints title '" << series[i].second << "'";
        }
        g << "\n";
      };
  std::vector<std::pair<std::string, std::string>> rewards = {
      {"reward_mean", "total"}};
  for (const std::string& p : parts) rewards.push_back({"reward:" + p, p});
  panel("reward (mean over completions)", rewards);
  g << "set title 'eval accuracy (greedy)'\nset yrange [0:1]\nplot '"
    << (dir / "eval.dat").string()
    << "' using 1:2 with linespoints title 'accuracy'\nunset yrange\n";
  panel("KL to the reference", {{"kl", "kl"}});
  panel("clip fraction", {{"clip_fraction", "clipped tokens"}});
  panel("logprob mismatch (sampler vs trainer)",
        {{"logprob_mismatch_max", "max |delta|"}});
  panel("completion length (tokens)", {{"completion_length_mean", "mean"}});
  panel("policy entropy (nats)", {{"entropy", "entropy"}});
  panel("gradient norm", {{"grad_norm", "before clipping"}});
  panel("time per step (s)", {{"rollout_seconds", "rollout"},
                              {"train_seconds", "train"},
                              {"reference_seconds", "reference"},
                              {"sync_seconds", "sync"},
                              {"wait_seconds", "wait"}});
  g << "unset multiplot\n";
  const fs::path script = dir / "plot.gp";
  {
    std::ofstream out(script);
    out << g.str();
  }
  Status status =
      RunGnuplot(gnuplot, script.string(), (dir / "gnuplot.log").string());
  if (status.ok()) {
    fs::rename(tmp_png, out_png, error);
    if (error) status = InternalError("cannot write " + out_png);
  }
  fs::remove(tmp_png, error);
  fs::remove_all(dir, error);
  return status;
}

}  // namespace rlrt
