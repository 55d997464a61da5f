#include "trainer_bridge/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

std::vector<LeafSpec> Specs() {
  return {{"w", {300, 400}, DType::kF32},
          {"norm", {7}, DType::kF32},
          {"big", {70000}, DType::kF32}};
}

float* F(ParamLeaves& l, size_t i) {
  return reinterpret_cast<float*>(l.data(i));
}

// A scalar reference of AdamW (decoupled decay, bias correction, clipping)
// in double, written from the paper's update rule.
TEST(AdamWTest, MatchesAScalarReferenceOverSeveralSteps) {
  ParamLeaves p = testing::AllocateOrDie(Specs());
  ParamLeaves g = testing::AllocateOrDie(Specs());
  ASSERT_TRUE(FillDummy(p, 1).ok());
  AdamWOptions o;
  o.weight_decay = 0.1;
  o.max_grad_norm = 0.5;
  auto opt = AdamW::Create(p, o);
  ASSERT_TRUE(opt.ok());
  auto mesh = testing::MakeMesh(3);
  // Reference state for a few elements of each leaf.
  struct Ref {
    size_t leaf;
    int64_t i;
    double p, m = 0, v = 0;
  };
  std::vector<Ref> refs = {{0, 0, 0}, {0, 119999, 0}, {1, 3, 0}, {2, 69999, 0}};
  for (Ref& r : refs) r.p = F(p, r.leaf)[r.i];
  for (int step = 0; step < 4; ++step) {
    ASSERT_TRUE(FillDummy(g, 10 + step).ok());
    double norm2 = 0;
    for (size_t l = 0; l < g.size(); ++l)
      for (size_t i = 0; i < g.bytes(l) / 4; ++i)
        norm2 += double(F(g, l)[i]) * F(g, l)[i];
    const double clip = std::min(1.0, 0.5 / std::sqrt(norm2));
    const double lr = 1e-2;
    auto stats = opt->Step(p, g, lr, mesh.get());
    ASSERT_TRUE(stats.ok());
    EXPECT_NEAR(stats->grad_norm, std::sqrt(norm2), 1e-9 * std::sqrt(norm2));
    for (Ref& r : refs) {
      const double gi = double(F(g, r.leaf)[r.i]) * clip;
      r.m = 0.9 * r.m + 0.1 * gi;
      r.v = 0.999 * r.v + 0.001 * gi * gi;
      const double mhat = r.m / (1 - std::pow(0.9, step + 1));
      const double vhat = r.v / (1 - std::pow(0.999, step + 1));
      if (r.leaf == 0) r.p -= lr * 0.1 * r.p;  // Matrices only.
      r.p -= lr * mhat / (std::sqrt(vhat) + 1e-8);
      EXPECT_NEAR(F(p, r.leaf)[r.i], r.p, 1e-6 * std::max(1.0, std::fabs(r.p)))
          << step << " " << r.leaf;
    }
  }
  EXPECT_EQ(opt->steps(), 4);
}

TEST(AdamWTest, BitIdenticalForAnyWorkerCount) {
  std::vector<uint64_t> hashes;
  for (int workers : {1, 2, 5}) {
    ParamLeaves p = testing::AllocateOrDie(Specs());
    ParamLeaves g = testing::AllocateOrDie(Specs());
    ASSERT_TRUE(FillDummy(p, 1).ok());
    ASSERT_TRUE(FillDummy(g, 2).ok());
    auto opt = AdamW::Create(p, AdamWOptions{});
    auto mesh = testing::MakeMesh(workers);
    ASSERT_TRUE(opt->Step(p, g, 1e-3, mesh.get()).ok());
    hashes.push_back(ContentHash(p));
  }
  EXPECT_EQ(hashes[0], hashes[1]);
  EXPECT_EQ(hashes[0], hashes[2]);
}

TEST(AdamWTest, NonFiniteGradientsAreRefusedAndChangeNothing) {
  ParamLeaves p = testing::AllocateOrDie(Specs());
  ParamLeaves g = testing::AllocateOrDie(Specs());
  ASSERT_TRUE(FillDummy(p, 1).ok());
  ASSERT_TRUE(FillDummy(g, 2).ok());
  auto opt = AdamW::Create(p, AdamWOptions{});
  const uint64_t before = ContentHash(p);
  F(g, 2)[12345] = NAN;
  auto r = opt->Step(p, g, 1e-3, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ContentHash(p), before);
  EXPECT_EQ(opt->steps(), 0);
  ParamLeaves other = testing::AllocateOrDie({{"x", {3}, DType::kF32}});
  EXPECT_FALSE(opt->Step(other, other, 1e-3, nullptr).ok());
  EXPECT_FALSE(AdamW::Create(p, AdamWOptions{.beta1 = 1.0}).ok());
}

TEST(LrScheduleTest, WarmupThenCosine) {
  LrSchedule s{LrSchedule::Kind::kWarmupCosine, 1.0, 4, 14, 0.1};
  EXPECT_DOUBLE_EQ(s.At(0), 0.2);
  EXPECT_DOUBLE_EQ(s.At(3), 0.8);
  EXPECT_DOUBLE_EQ(s.At(4), 1.0);
  EXPECT_NEAR(s.At(9), 0.1 + 0.9 * 0.5, 1e-12);  // Half way down.
  EXPECT_DOUBLE_EQ(s.At(14), 0.1);
  EXPECT_DOUBLE_EQ(s.At(100), 0.1);
  LrSchedule c{LrSchedule::Kind::kConstant, 0.5};
  EXPECT_EQ(c.At(0), 0.5);
  EXPECT_EQ(c.At(1000), 0.5);
  EXPECT_FALSE(ParseLrScheduleKind("linear-ish").ok());
}

}  // namespace
}  // namespace rlrt
