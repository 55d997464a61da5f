// The RL loop's progress line: its text, in-place redraws on a terminal,
// plain periodic lines elsewhere, and JSON lines printed on a clean line.
#include "examples/progress_line.h"

#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <thread>

namespace rlrt {
namespace {

TEST(ProgressTextTest, ShowsStepPhaseTokensRateElapsedAndEta) {
  ProgressState s;
  s.at = {3, 10, "sampling", 400, 2048};
  s.phase_started = 36;
  s.now = 41;  // 5 s of sampling: 80 tok/s.
  s.first_step = 1;
  s.steps_done = 2;
  s.steps_seconds = 30;  // 15 s a step.
  s.step_started = 36;
  // 8 steps left at 15 s, 5 s of this one already gone: 115 s.
  EXPECT_EQ(ProgressText(s),
            "step 3/10 | sampling 400/2048 tok | 80 tok/s | 0:41 elapsed | "
            "ETA 1:55");
  s.at = {3, 10, "sync", 0, 0};
  s.steps_done = 0;
  s.now = 3725;
  EXPECT_EQ(ProgressText(s), "step 3/10 | sync | 1:02:05 elapsed | ETA --");
}

TEST(ProgressLineTest, PlainLinesWhenNotATerminal) {
  std::ostringstream text;
  {
    ProgressLine line(&text, /*terminal=*/false, 0.05);
    line.Update({1, 2, "sampling", 10, 64});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    line.Print([&] { text << "{\"json\":1}\n"; });
  }  // Joins the ticker: the text is stable from here.
  const std::string out = text.str();
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(out.find("\033["), std::string::npos);
  EXPECT_NE(out.find("step 1/2 | sampling 10/64 tok"), std::string::npos);
  EXPECT_NE(out.find("\n{\"json\":1}\n"), std::string::npos);
  // Periodic: several lines in 300 ms at one every 50 ms.
  size_t lines = 0;
  for (size_t at = 0; (at = out.find("step 1/2", at)) != std::string::npos;
       ++at)
    ++lines;
  EXPECT_GE(lines, 3u);
}

TEST(ProgressLineTest, RedrawsInPlaceAndClearsBeforeOtherOutput) {
  std::ostringstream text;
  {
    ProgressLine line(&text, /*terminal=*/true, 10);
    line.Update({1, 5, "training", 0, 0});
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    line.Print([&] { text << "JSON\n"; });
    line.Update({2, 5, "sampling", 5, 50});
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
  }
  const std::string out = text.str();
  // Redraws start with carriage return + erase line, and never end a line.
  EXPECT_NE(out.find("\r\033[Kstep 1/5 | training"), std::string::npos);
  EXPECT_EQ(out.find("training | 0:00 elapsed | ETA --\n"), std::string::npos);
  // The JSON line comes after the line was erased.
  EXPECT_NE(out.find("ETA --\r\033[KJSON\n"), std::string::npos) << out;
  EXPECT_NE(out.find("step 2/5 | sampling 5/50 tok"), std::string::npos);
  // Step 1 finished: an ETA is known.
  EXPECT_EQ(out.find("step 2/5 | sampling 5/50 tok | 0 tok/s | 0:00 elapsed | "
                     "ETA --"),
            std::string::npos);
  // Destruction erased the last drawing.
  EXPECT_EQ(out.substr(out.size() - 4), "\r\033[K");
}

}  // namespace
}  // namespace rlrt
