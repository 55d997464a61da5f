// plot_metrics and the demo's --plot draw a real PNG from a real run's
// metrics, and refuse what they cannot draw with the reason.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code = -1;
  std::string output;
};

Result RunCommand(const std::string& command) {
  Result r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[1 << 16];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) r.output += buf;
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A PNG: its signature, and more than a trivial size (nine panels).
bool IsPng(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char head[8] = {};
  in.read(head, 8);
  return in.gcount() == 8 && std::string(head + 1, 3) == "PNG" &&
         fs::file_size(path) > 20000;
}

TEST(PlotMetricsTest, DrawsARealRunAndTheDemoRedrawsItsOwn) {
  const fs::path dir = fs::temp_directory_path() /
                       ("rlrt_plot_test_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path metrics = dir / "metrics.jsonl", live = dir / "live.png",
                 drawn = dir / "run.png";
  Result demo =
      RunCommand(std::string(GRPO_DEMO_PATH) +
                 " --batch_size=2 --num_generations=2 --max_new_tokens=8 "
                 "--max_prompt_length=200 --steps=3 --eval_every=2 "
                 "--eval_examples=2 --num_virtual_devices=2 --beta=0.04 "
                 "--metrics_out=" +
                 metrics.string() + " --plot=" + live.string());
  ASSERT_EQ(demo.exit_code, 0) << demo.output;
  EXPECT_TRUE(IsPng(live));
  Result plot = RunCommand(std::string(PLOT_METRICS_PATH) + " --metrics=" +
                           metrics.string() + " --out=" + drawn.string());
  ASSERT_EQ(plot.exit_code, 0) << plot.output;
  EXPECT_TRUE(IsPng(drawn));
  EXPECT_NE(plot.output.find("\"phase\":\"plot\""), std::string::npos);

  // Nothing to draw, no file, no gnuplot: refused with the reason.
  const fs::path empty = dir / "empty.jsonl";
  std::ofstream(empty) << "{\"phase\":\"summary\"}\nnot json\n";
  Result none = RunCommand(std::string(PLOT_METRICS_PATH) +
                           " --metrics=" + empty.string() +
                           " --out=" + (dir / "x.png").string());
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("no grpo_step lines"), std::string::npos)
      << none.output;
  EXPECT_FALSE(fs::exists(dir / "x.png"));
  Result missing = RunCommand(std::string(PLOT_METRICS_PATH) +
                              " --metrics=/nonexistent.jsonl");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("cannot open"), std::string::npos);
  Result no_gnuplot = RunCommand(
      std::string(PLOT_METRICS_PATH) + " --metrics=" + metrics.string() +
      " --gnuplot=/nonexistent/gnuplot --out=" + (dir / "y.png").string());
  EXPECT_EQ(no_gnuplot.exit_code, 1);
  EXPECT_NE(no_gnuplot.output.find("gnuplot"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "y.png"));
  fs::remove_all(dir);
}

}  // namespace
