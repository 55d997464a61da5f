#include "models/synthetic_structure.h"

#include <gtest/gtest.h>

#include <set>

namespace rlrt {
namespace {

TEST(SyntheticStructureTest, FillsTheBudgetWithQwen3Names) {
  for (int64_t budget : {2'000'000LL, 16'000'000LL, 128'000'000LL}) {
    auto shape = ShapeForParamBudget(budget);
    ASSERT_TRUE(shape.ok()) << shape.status();
    const auto specs = Qwen3LeafSpecs(*shape);
    const int64_t n = CountParams(specs);
    EXPECT_LE(n, budget);
    EXPECT_GT(n, budget * 0.8) << budget;
    std::set<std::string> names;
    for (const auto& s : specs) EXPECT_TRUE(names.insert(s.name).second);
    EXPECT_EQ(specs.front().name, "model.embed_tokens.weight");
    EXPECT_EQ(specs.back().name, "model.norm.weight");
    EXPECT_TRUE(names.count("model.layers.0.self_attn.q_norm.weight"));
    EXPECT_EQ(specs.size(), 2 + 11 * static_cast<size_t>(shape->num_layers));
  }
}

TEST(SyntheticStructureTest, UntiedAddsAnLmHead) {
  SyntheticShape s = *ShapeForParamBudget(2'000'000);
  s.tie_embeddings = false;
  const auto specs = Qwen3LeafSpecs(s);
  EXPECT_EQ(specs.back().name, "lm_head.weight");
  EXPECT_EQ(specs.back().shape,
            (std::vector<int64_t>{s.vocab_size, s.hidden_size}));
}

TEST(SyntheticStructureTest, RejectsTinyBudgets) {
  auto shape = ShapeForParamBudget(1000);
  ASSERT_FALSE(shape.ok());
  EXPECT_NE(shape.status().message().find("below the smallest"),
            std::string::npos);
}

}  // namespace
}  // namespace rlrt
