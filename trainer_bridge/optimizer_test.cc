#include "trainer_bridge/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "models/dtype.h"
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

// BF16 gradient leaves are read as the float32 values they hold: a step
// with them is bit for bit the step with float32 leaves of those values
// (grad norm, clipping, moments and weights), and a NaN among them is
// refused as in float32.
TEST(AdamWTest, Bf16GradientsStepAsTheirFloat32Values) {
  std::vector<LeafSpec> bf16_specs = Specs();
  bf16_specs[0].dtype = DType::kBF16;
  bf16_specs[2].dtype = DType::kBF16;
  ParamLeaves narrow = testing::AllocateOrDie(bf16_specs);
  ASSERT_TRUE(FillDummy(narrow, 2).ok());
  ParamLeaves wide = testing::AllocateOrDie(Specs());
  for (size_t l = 0; l < wide.size(); ++l) {
    const int64_t n = wide.spec(l).NumElements();
    for (int64_t i = 0; i < n; ++i) {
      F(wide, l)[i] = LoadAsF32(narrow.data(l), narrow.spec(l).dtype, i);
    }
  }
  auto mesh = testing::MakeMesh(2);
  ParamLeaves p_narrow = testing::AllocateOrDie(Specs());
  ParamLeaves p_wide = testing::AllocateOrDie(Specs());
  ASSERT_TRUE(FillDummy(p_narrow, 1).ok());
  ASSERT_TRUE(FillDummy(p_wide, 1).ok());
  AdamWOptions o;
  o.weight_decay = 0.1;
  o.max_grad_norm = 0.5;
  auto opt_narrow = AdamW::Create(p_narrow, o);
  auto opt_wide = AdamW::Create(p_wide, o);
  ASSERT_TRUE(opt_narrow.ok() && opt_wide.ok());
  for (int step = 0; step < 2; ++step) {
    auto a = opt_narrow->Step(p_narrow, narrow, 1e-2, mesh.get());
    auto b = opt_wide->Step(p_wide, wide, 1e-2, mesh.get());
    ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
    EXPECT_EQ(a->grad_norm, b->grad_norm);
    EXPECT_LT(a->clip_scale, 1.0);
    EXPECT_EQ(a->clip_scale, b->clip_scale);
  }
  EXPECT_EQ(ContentHash(p_narrow), ContentHash(p_wide));
  EXPECT_EQ(ContentHash(opt_narrow->first_moment()),
            ContentHash(opt_wide->first_moment()));
  EXPECT_EQ(ContentHash(opt_narrow->second_moment()),
            ContentHash(opt_wide->second_moment()));

  const uint64_t before = ContentHash(p_narrow);
  reinterpret_cast<uint16_t*>(narrow.data(2))[777] = F32ToBf16(NAN);
  EXPECT_EQ(opt_narrow->Step(p_narrow, narrow, 1e-2, nullptr).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(ContentHash(p_narrow), before);
  // F16 is neither: refused.
  bf16_specs[1].dtype = DType::kF16;
  ParamLeaves f16 = testing::AllocateOrDie(bf16_specs);
  EXPECT_EQ(opt_narrow->Step(p_narrow, f16, 1e-2, nullptr).status().code(),
            StatusCode::kInvalidArgument);
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
