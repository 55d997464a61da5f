#include "models/ops/embedding.h"

#include <gtest/gtest.h>

#include "models/ops/op_test_util.h"

namespace rlrt {
namespace {

constexpr int64_t kVocab = 11, kDim = 5;

TEST(EmbeddingTest, ForwardGathersRows) {
  auto table = testing::RandomVector(kVocab * kDim, 1);
  const std::vector<int32_t> ids = {3, 0, 10, 3};
  std::vector<float> out(ids.size() * kDim);
  ASSERT_TRUE(EmbeddingForward(table.data(), kDim, ids.data(), ids.size(),
                               out.data(), nullptr)
                  .ok());
  for (size_t t = 0; t < ids.size(); ++t) {
    for (int64_t i = 0; i < kDim; ++i)
      EXPECT_EQ(out[t * kDim + i], table[ids[t] * kDim + i]);
  }
}

TEST(EmbeddingTest, BackwardScatterAddsRepeatedIds) {
  // Token 3 appears three times, token 7 never: its row must stay as it was.
  const std::vector<int32_t> ids = {3, 0, 10, 3, 5, 3};
  const int64_t rows = ids.size();
  auto d_out = testing::RandomVector(rows * kDim, 2);
  std::vector<double> want(kVocab * kDim, 0.25);
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t i = 0; i < kDim; ++i)
      want[ids[t] * kDim + i] += d_out[t * kDim + i];
  }
  testing::ExpectSameBitsForAnyWorkerCount([&](Mesh* mesh) {
    std::vector<float> d_table(kVocab * kDim, 0.25f);
    EXPECT_TRUE(EmbeddingBackward(d_out.data(), kDim, ids.data(), rows,
                                  d_table.data(), kVocab, mesh)
                    .ok());
    EXPECT_LT(testing::MaxAbsDiff(d_table.data(), want.data(), want.size()),
              1e-6);
    return d_table;
  });
}

}  // namespace
}  // namespace rlrt
