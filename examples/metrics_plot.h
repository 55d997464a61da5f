// One picture of a GRPO run from its JSON lines (grpo_gsm8k_10steps'
// --metrics_out): reward (total and per function), evaluation accuracy,
// KL, clip fraction, logprob_mismatch_max, completion length, entropy,
// gradient norm and the time split of a step, as panels of one PNG drawn
// by gnuplot (Debian's gnuplot-nox, installed by the setup step).
#ifndef RLRT_EXAMPLES_METRICS_PLOT_H_
#define RLRT_EXAMPLES_METRICS_PLOT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace rlrt {

// Lines that are not JSON objects, and phases other than grpo_step and
// eval, are skipped. Bounded: a line longer than 1 MiB is refused.
StatusOr<std::vector<nlohmann::json>> ReadMetricsFile(const std::string& path);

// Renders `lines` to `out_png` (written whole, then renamed into place, so
// a reader never sees half a picture). FailedPrecondition when there is no
// grpo_step line; Unavailable when gnuplot is missing or fails.
Status PlotMetrics(const std::vector<nlohmann::json>& lines,
                   const std::string& out_png,
                   const std::string& gnuplot = "gnuplot");

}  // namespace rlrt

#endif  // RLRT_EXAMPLES_METRICS_PLOT_H_
