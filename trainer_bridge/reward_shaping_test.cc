#include "trainer_bridge/reward_shaping.h"

#include <gtest/gtest.h>

namespace rlrt {
namespace {

TEST(OverlongPenaltyTest, FallsLinearlyOverTheBufferByHand) {
  // Limit 100, buffer 20: free up to 80 tokens, -1 at 100.
  EXPECT_EQ(OverlongPenalty(10, 100, 20), 0.0);
  EXPECT_EQ(OverlongPenalty(80, 100, 20), 0.0);
  EXPECT_DOUBLE_EQ(OverlongPenalty(85, 100, 20), -0.25);
  EXPECT_DOUBLE_EQ(OverlongPenalty(90, 100, 20), -0.5);
  EXPECT_DOUBLE_EQ(OverlongPenalty(100, 100, 20), -1.0);
  EXPECT_DOUBLE_EQ(OverlongPenalty(130, 100, 20), -1.0);
  // Off.
  EXPECT_EQ(OverlongPenalty(100, 100, 0), 0.0);
}

}  // namespace
}  // namespace rlrt
