// plot_metrics: one PNG of a GRPO run from its JSON lines.
//
//   build/bin/plot_metrics --metrics=metrics.jsonl --out=run.png
#include <gflags/gflags.h>

#include <iostream>

#include "examples/metrics_plot.h"

DEFINE_string(metrics, "",
              "JSON lines of a GRPO run (grpo_gsm8k_10steps --metrics_out).");
DEFINE_string(out, "run.png", "The PNG to write.");
DEFINE_string(gnuplot, "gnuplot", "The gnuplot binary.");

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Draws reward, evaluation accuracy, KL, clip fraction, logprob "
      "mismatch, completion length, entropy, gradient norm and the time "
      "split of each step as one PNG.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_metrics.empty()) {
    std::cerr << "plot_metrics: --metrics is required" << std::endl;
    return 1;
  }
  auto lines = rlrt::ReadMetricsFile(FLAGS_metrics);
  rlrt::Status status =
      lines.ok() ? rlrt::PlotMetrics(*lines, FLAGS_out, FLAGS_gnuplot)
                 : lines.status();
  if (!status.ok()) {
    std::cerr << "plot_metrics: " << status << std::endl;
    return 1;
  }
  std::cout << "{\"phase\":\"plot\",\"out\":\"" << FLAGS_out
            << "\",\"lines\":" << lines->size() << "}" << std::endl;
  return 0;
}
