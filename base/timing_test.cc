#include "base/timing.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace rlrt {
namespace {

TEST(TimingTest, SecondsBetweenIsTheSignedDifference) {
  const SteadyClock::time_point t0{};
  const SteadyClock::time_point t1 = t0 + std::chrono::milliseconds(1500);
  EXPECT_DOUBLE_EQ(SecondsBetween(t0, t1), 1.5);
  EXPECT_DOUBLE_EQ(SecondsBetween(t1, t0), -1.5);
}

TEST(TimingTest, SinceMeasuresElapsedTimeInItsUnit) {
  const SteadyClock::time_point start = SteadyClock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double seconds = SecondsSince(start);
  const double ms = MillisecondsSince(start);
  EXPECT_GE(seconds, 0.020);
  EXPECT_GE(ms, 20.0);
  // Milliseconds were read after seconds, so they are at least as large.
  EXPECT_GE(ms, seconds * 1e3);
  EXPECT_LT(seconds, 10.0);
}

}  // namespace
}  // namespace rlrt
