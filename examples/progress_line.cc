#include "examples/progress_line.h"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace rlrt {
namespace {

std::string Clock(double seconds) {
  const int64_t s = static_cast<int64_t>(std::max(0.0, seconds) + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld",
                  static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld",
                  static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

}  // namespace

std::string ProgressText(const ProgressState& s) {
  const RlProgress& p = s.at;
  // Appended piece by piece: GCC 12 warns (wrongly, -Wrestrict) on long
  // chains of string concatenation.
  std::string text = "step ";
  text += std::to_string(p.step);
  text += '/';
  text += std::to_string(p.steps);
  text += " | ";
  text += p.phase;
  if (p.tokens_target > 0) {
    text += ' ';
    text += std::to_string(p.tokens_done);
    text += '/';
    text += std::to_string(p.tokens_target);
    text += " tok";
    const double sampling = s.now - s.phase_started;
    if (std::string_view(p.phase) == "sampling" && sampling > 0) {
      text += " | ";
      text += std::to_string(static_cast<int64_t>(p.tokens_done / sampling));
      text += " tok/s";
    }
  }
  text += " | ";
  text += Clock(s.now);
  text += " elapsed";
  if (s.steps_done > 0) {
    // The mean finished step, for every step not yet finished, less what
    // the current one has already taken.
    const double per_step = s.steps_seconds / double(s.steps_done);
    const int64_t left = p.steps - (s.first_step - 1) - s.steps_done;
    const double eta = per_step * double(left) - (s.now - s.step_started);
    text += " | ETA ";
    text += Clock(eta);
  } else {
    text += " | ETA --";
  }
  return text;
}

ProgressLine::ProgressLine(std::ostream* out, bool terminal,
                           double plain_every_seconds)
    : out_(out),
      terminal_(terminal),
      every_(terminal ? 0.25 : std::max(0.05, plain_every_seconds)) {
  ticker_ = std::thread([this] { Tick(); });
}

ProgressLine::~ProgressLine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    ClearLocked();
  }
  wake_.notify_all();
  ticker_.join();
}

void ProgressLine::Update(const RlProgress& progress) {
  std::lock_guard<std::mutex> lock(mu_);
  const double now = SecondsSince(start_);
  if (!started_) {
    started_ = true;
    state_.first_step = progress.step;
    state_.step_started = now;
    state_.phase_started = now;
  }
  if (progress.step != state_.at.step && state_.at.step != 0) {
    ++state_.steps_done;
    state_.steps_seconds += now - state_.step_started;
    state_.step_started = now;
  }
  if (std::string_view(progress.phase) != state_.at.phase)
    state_.phase_started = now;
  state_.at = progress;
}

void ProgressLine::Print(const std::function<void()>& print) {
  std::lock_guard<std::mutex> lock(mu_);
  ClearLocked();
  print();
}

void ProgressLine::ClearLocked() {
  if (!drawn_) return;
  *out_ << "\r\033[K" << std::flush;
  drawn_ = false;
}

void ProgressLine::Tick() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::duration<double>(every_));
    if (stop_ || !started_) continue;
    state_.now = SecondsSince(start_);
    const std::string text = ProgressText(state_);
    if (terminal_) {
      *out_ << "\r\033[K" << text << std::flush;
      drawn_ = true;
    } else {
      *out_ << text << std::endl;
    }
  }
}

}  // namespace rlrt
