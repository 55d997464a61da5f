// The RL loop's progress on stderr: on a terminal, one line redrawn in place
// (step k/N, the phase, rollout tokens done/target, tokens/s, elapsed, ETA);
// elsewhere (a log file, a pipe), the same text as a plain line every
// `plain_every_seconds`. JSON lines on stdout go through Print, which
// clears the line first so the two never mix.
#ifndef RLRT_EXAMPLES_PROGRESS_LINE_H_
#define RLRT_EXAMPLES_PROGRESS_LINE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

#include "base/timing.h"
#include "trainer_bridge/rl_loop.h"

namespace rlrt {

// What the line shows, with the times it needs (seconds since the run
// started).
struct ProgressState {
  RlProgress at;
  double now = 0;
  double phase_started = 0;  // When `at.phase` began.
  int64_t steps_done = 0;    // Finished in this run.
  int64_t first_step = 0;    // The step this run started at (1-based).
  double steps_seconds = 0;  // Wall time of the finished ones.
  double step_started = 0;   // When the current step began.
};

// "step 3/10 | sampling 412/2048 tok | 85 tok/s | 0:41 | ETA 2:10".
std::string ProgressText(const ProgressState& s);

class ProgressLine {
 public:
  // `terminal`: redraw in place every 0.25 s; otherwise a plain line every
  // plain_every_seconds.
  ProgressLine(std::ostream* out, bool terminal, double plain_every_seconds);
  ~ProgressLine();  // Stops the ticker and clears the line.
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void Update(const RlProgress& progress);
  // Runs `print` (which writes elsewhere, e.g. stdout) with the line
  // cleared, so its output starts on a clean line.
  void Print(const std::function<void()>& print);

 private:
  void Tick();
  void ClearLocked();

  std::ostream* const out_;
  const bool terminal_;
  const double every_;
  const SteadyClock::time_point start_ = SteadyClock::now();
  std::mutex mu_;  // Guards everything below and writes to out_.
  std::condition_variable wake_;
  bool stop_ = false;
  bool started_ = false;  // Update has been called once.
  bool drawn_ = false;    // A line is on the terminal.
  ProgressState state_;
  std::thread ticker_;
};

}  // namespace rlrt

#endif  // RLRT_EXAMPLES_PROGRESS_LINE_H_
