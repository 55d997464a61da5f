#include "models/ops/embedding.h"

#include <gtest/gtest.h>

#include "models/ops/op_test_util.h"

namespace rlrt {
namespace {

constexpr int64_t kEmbeddingVocab = 11, kEmbeddingDim = 5;

TEST(EmbeddingTest, ForwardGathersRows) {
  auto table = testing::RandomVector(kEmbeddingVocab * kEmbeddingDim, 1);
  const std::vector<int32_t> ids = {3, 0, 10, 3};
  std::vector<float> out(ids.size() * kEmbeddingDim);
  ASSERT_TRUE(EmbeddingForward(table.data(), kEmbeddingDim, ids.data(),
                               ids.size(), out.data(), nullptr)
                  .ok());
  for (size_t t = 0; t < ids.size(); ++t) {
    for (int64_t i = 0; i < kEmbeddingDim; ++i)
      EXPECT_EQ(out[t * kEmbeddingDim + i], table[ids[t] * kEmbeddingDim + i]);
  }
}

TEST(EmbeddingTest, BackwardScatterAddsRepeatedIds) {
  // Token 3 appears three times, token 7 never: its row must stay as it was.
  const std::vector<int32_t> ids = {3, 0, 10, 3, 5, 3};
  const int64_t rows = ids.size();
  auto d_out = testing::RandomVector(rows * kEmbeddingDim, 2);
  std::vector<double> want(kEmbeddingVocab * kEmbeddingDim, 0.25);
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t i = 0; i < kEmbeddingDim; ++i)
      want[ids[t] * kEmbeddingDim + i] += d_out[t * kEmbeddingDim + i];
  }
  testing::ExpectSameBitsForAnyWorkerCount([&](Mesh* mesh) {
    std::vector<float> d_table(kEmbeddingVocab * kEmbeddingDim, 0.25f);
    EXPECT_TRUE(EmbeddingBackward(d_out.data(), kEmbeddingDim, ids.data(), rows,
                                  d_table.data(), kEmbeddingVocab, mesh)
                    .ok());
    EXPECT_LT(testing::MaxAbsDiff(d_table.data(), want.data(), want.size()),
              1e-6);
    return d_table;
  });
}

}  // namespace
}  // namespace rlrt
