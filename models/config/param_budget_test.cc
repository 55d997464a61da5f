#include "models/config/param_budget.h"

#include <gtest/gtest.h>

#include <set>

namespace rlrt {
namespace {

TEST(ParamBudgetTest, FillsTheBudgetWithAValidQwen3Config) {
  for (int64_t budget : {2'000'000LL, 16'000'000LL, 128'000'000LL}) {
    auto config = ConfigForParamBudget(budget);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_TRUE(ValidateModelConfig(*config).ok());
    const auto specs = LeafSpecsFor(*config);
    int64_t n = 0;
    std::set<std::string> names;
    for (const auto& s : specs) {
      n += s.NumElements();
      EXPECT_TRUE(names.insert(s.name).second);
    }
    EXPECT_EQ(n, config->NumParams());
    EXPECT_LE(n, budget);
    EXPECT_GT(n, budget * 0.8) << budget;
    EXPECT_TRUE(names.count("model.layers.0.self_attn.q_norm.weight"));
  }
}

TEST(ParamBudgetTest, RejectsTinyBudgets) {
  auto config = ConfigForParamBudget(1000);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("below the smallest"),
            std::string::npos);
}

}  // namespace
}  // namespace rlrt
