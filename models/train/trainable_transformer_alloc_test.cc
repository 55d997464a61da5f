// Steady-state Forward and Backward must not allocate: counts every global
// operator new in this binary while they run.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "models/forward/dummy_weights.h"
#include "models/forward/forward_test_util.h"
#include "models/test_util.h"
#include "models/testing/allocation_counter.h"
#include "models/train/train_test_util.h"

namespace rlrt {
namespace {

TEST(TrainableTransformerAllocTest, CounterSeesAllocations) {
  const long before = testing::AllocationCount();
  auto p = std::make_unique<std::vector<int>>(1000);
  EXPECT_GE(testing::AllocationCount() - before, 2);
}

TEST(TrainableTransformerAllocTest, ForwardAndBackwardAllocateNothing) {
  const ModelConfig config = testing::SmallQwen3();
  auto weights = ParamLeaves::Allocate(LeafSpecsFor(config));
  ASSERT_TRUE(weights.ok());
  ASSERT_TRUE(InitDummyWeights(*weights, 3, nullptr).ok());
  auto mesh = testing::MakeMesh(2);
  auto model = testing::MakeTrainable(config, *weights, mesh.get(), {64, 4});
  ParamLeaves grads = testing::ZeroGradients(config);
  testing::OwnedBatch batch;
  batch.Add({1, 5, 9, 2, 7, 3, 3, 8, 60}, {2, 3, 4, 5, 6, 7});
  batch.Add({4, 4, 11, 30}, {0, 2});
  std::vector<float> logprobs(batch.num_targets());
  std::vector<float> dloss(batch.num_targets(), -0.5f);
  ASSERT_TRUE(model->Forward(batch.sequences, 0.7f, logprobs).ok());
  ASSERT_TRUE(model->Backward(dloss, grads).ok());

  const long before = testing::AllocationCount();
  for (int step = 0; step < 5; ++step) {
    ASSERT_TRUE(model->Forward(batch.sequences, 0.7f, logprobs).ok());
    ASSERT_TRUE(model->Backward(dloss, grads).ok());
  }
  EXPECT_EQ(testing::AllocationCount() - before, 0);
}

TEST(TrainableTransformerAllocTest,
     WithAnAdapterForwardAndBackwardAllocateNothing) {
  const ModelConfig config = testing::SmallQwen3();
  auto weights = ParamLeaves::Allocate(LeafSpecsFor(config));
  ASSERT_TRUE(weights.ok());
  ASSERT_TRUE(InitDummyWeights(*weights, 3, nullptr).ok());
  LoraConfig lora;
  lora.rank = 4;
  auto adapter = LoraAdapter::Create(config, lora);
  ASSERT_TRUE(adapter.ok());
  ASSERT_TRUE((*adapter)->InitLikePeft(2).ok());
  auto grads = ParamLeaves::Allocate((*adapter)->leaves().specs());
  ASSERT_TRUE(grads.ok());
  auto mesh = testing::MakeMesh(2);
  TrainableTransformerOptions options{64, 4};
  options.adapter = adapter->get();
  auto model = testing::MakeTrainable(config, *weights, mesh.get(), options);
  testing::OwnedBatch batch;
  batch.Add({1, 5, 9, 2, 7, 3, 3, 8, 60}, {2, 3, 4, 5, 6, 7});
  std::vector<float> logprobs(batch.num_targets());
  std::vector<float> dloss(batch.num_targets(), -0.5f);
  ASSERT_TRUE(model->Forward(batch.sequences, 0.7f, logprobs).ok());
  ASSERT_TRUE(model->Backward(dloss, *grads).ok());

  const long before = testing::AllocationCount();
  for (int step = 0; step < 5; ++step) {
    ASSERT_TRUE(model->Forward(batch.sequences, 0.7f, logprobs).ok());
    ASSERT_TRUE(model->Backward(dloss, *grads).ok());
  }
  EXPECT_EQ(testing::AllocationCount() - before, 0);
}

}  // namespace
}  // namespace rlrt
