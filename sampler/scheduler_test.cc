#include "sampler/scheduler.h"

#include <gtest/gtest.h>

#include "sampler/fake_batch_model.h"

namespace rlrt {
namespace {

using testing::FakeBatchModel;

constexpr int64_t kVocab = 37;

std::vector<int32_t> ExpectedGreedy(std::vector<int32_t> tokens,
                                    int64_t new_tokens) {
  std::vector<int32_t> out;
  for (int64_t i = 0; i < new_tokens; ++i) {
    out.push_back(FakeBatchModel::Next(tokens, kVocab));
    tokens.push_back(out.back());
  }
  return out;
}

std::vector<int32_t> Prompt(int64_t length, int32_t salt) {
  std::vector<int32_t> p;
  for (int64_t i = 0; i < length; ++i)
    p.push_back(static_cast<int32_t>((i * 7 + salt) % kVocab));
  return p;
}

struct Submitted {
  uint64_t id;
  std::shared_ptr<RequestCompletion> done;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void Build(int64_t num_pages, int64_t max_running = 16,
             int64_t max_prefill = 64, int64_t page_size = 4,
             bool prefix_cache = true) {
    model_ = std::make_unique<FakeBatchModel>(kVocab, page_size, num_pages);
    config_ = SchedulerConfig{.max_running_requests = max_running,
                              .max_prefill_tokens = max_prefill,
                              .page_size = page_size,
                              .sample_vocab = kVocab,
                              .enable_prefix_cache = prefix_cache};
    scheduler_ =
        std::make_unique<Scheduler>(config_, *model_, nullptr, nullptr);
  }

  Submitted Add(std::vector<int32_t> prompt, int64_t max_new, int32_t n = 1,
                float temperature = 0.0f, uint64_t seed = 1) {
    auto r = std::make_unique<PreparedRequest>();
    r->id = next_id_++;
    r->prompt = std::move(prompt);
    r->sampling.temperature = temperature;
    for (int32_t i = 0; i < n; ++i) r->seeds.push_back(SampleSeed(seed, i));
    r->stop.max_new_tokens = max_new;
    r->return_logprobs = true;
    r->completion = std::make_shared<RequestCompletion>();
    r->submitted = std::chrono::steady_clock::now();
    Submitted s{r->id, r->completion};
    EXPECT_TRUE(Scheduler::CheckFits(config_, model_->cache().shape().num_pages,
                                     r->prompt.size(), max_new, n)
                    .ok());
    scheduler_->Enqueue(std::move(r));
    return s;
  }

  void RunToIdle(int max_steps = 10000) {
    for (int i = 0; i < max_steps && !scheduler_->idle(); ++i) {
      ASSERT_TRUE(scheduler_->Step().ok());
    }
    ASSERT_TRUE(scheduler_->idle());
  }

  GenerateResult ResultOf(const Submitted& s) {
    EXPECT_TRUE(s.done->done());
    StatusOr<GenerateResult> r = s.done->Wait();
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : GenerateResult{};
  }

  void ExpectAllPagesFree() {
    SchedulerLoad load = scheduler_->load();
    EXPECT_EQ(load.kv_pages_free, load.kv_pages_total);
    EXPECT_EQ(load.running_samples, 0);
  }

  std::unique_ptr<FakeBatchModel> model_;
  SchedulerConfig config_;
  std::unique_ptr<Scheduler> scheduler_;
  uint64_t next_id_ = 1;
};

TEST_F(SchedulerTest, GreedyRequestFollowsTheModel) {
  Build(64);
  Submitted s = Add(Prompt(10, 3), 12);
  RunToIdle();
  GenerateResult r = ResultOf(s);
  ASSERT_EQ(r.samples.size(), 1u);
  EXPECT_EQ(r.samples[0].token_ids, ExpectedGreedy(Prompt(10, 3), 12));
  EXPECT_EQ(r.samples[0].finish_reason, FinishReason::kLength);
  EXPECT_EQ(r.prompt_tokens, 10);
  EXPECT_EQ(r.completion_tokens, 12);
  EXPECT_EQ(r.samples[0].logprobs.size(), 12u);
  EXPECT_EQ(r.samples[0].weight_versions.size(), 12u);
  ExpectAllPagesFree();
}

TEST_F(SchedulerTest, RequestsJoinTheRunningBatchBetweenSteps) {
  Build(256);
  std::vector<Submitted> subs;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) {
    prompts.push_back(Prompt(3 + 5 * i, i));
    subs.push_back(Add(prompts.back(), 8 + i));
    // A new request arrives while the others decode.
    ASSERT_TRUE(scheduler_->Step().ok());
    ASSERT_TRUE(scheduler_->Step().ok());
  }
  RunToIdle();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(ResultOf(subs[i]).samples[0].token_ids,
              ExpectedGreedy(prompts[i], 8 + i))
        << i;
  }
  EXPECT_GE(model_->max_batch(), 4);  // They really ran together.
  ExpectAllPagesFree();
}

TEST_F(SchedulerTest, ChunkedPrefillGivesTheSameTokens) {
  Build(64, 16, /*max_prefill=*/5);
  const std::vector<int32_t> prompt = Prompt(23, 5);
  Submitted s = Add(prompt, 6);
  RunToIdle();
  EXPECT_EQ(ResultOf(s).samples[0].token_ids, ExpectedGreedy(prompt, 6));
  EXPECT_EQ(scheduler_->stats().prefill_tokens, 23);
}

TEST_F(SchedulerTest, GroupSamplesShareThePromptAndMatchSingleRuns) {
  Build(128);
  const std::vector<int32_t> prompt = Prompt(10, 1);  // Partial last page.
  Submitted group = Add(prompt, 9, /*n=*/4, /*temperature=*/1.0f, /*seed=*/77);
  RunToIdle();
  GenerateResult g = ResultOf(group);
  ASSERT_EQ(g.samples.size(), 4u);
  EXPECT_EQ(scheduler_->stats().prefill_tokens, 10);  // Prefilled once.
  // Each sample equals a lone request drawing with that sample's seed,
  // which starts from a freshly prefilled prompt.
  for (int i = 0; i < 4; ++i) {
    Build(128);
    auto req = std::make_unique<PreparedRequest>();
    req->id = 99;
    req->prompt = prompt;
    req->sampling.temperature = 1.0f;
    req->seeds = {SampleSeed(77, i)};
    req->stop.max_new_tokens = 9;
    req->completion = std::make_shared<RequestCompletion>();
    auto done = req->completion;
    scheduler_->Enqueue(std::move(req));
    RunToIdle();
    EXPECT_EQ(done->Wait()->samples[0].token_ids, g.samples[i].token_ids) << i;
  }
  // Temperature 1 over a peaked but not one-hot distribution: the samples
  // are not all the same.
  bool differ = false;
  for (int i = 1; i < 4; ++i)
    differ |= g.samples[i].token_ids != g.samples[0].token_ids;
  EXPECT_TRUE(differ);
}

TEST_F(SchedulerTest, FullPoolMakesRequestsWaitNotFail) {
  // Each request needs ceil((6 + 10) / 4) = 4 pages; 9 pages hold two.
  Build(9);
  std::vector<Submitted> subs;
  for (int i = 0; i < 5; ++i) subs.push_back(Add(Prompt(6, i), 10));
  int64_t max_running = 0;
  for (int i = 0; i < 1000 && !scheduler_->idle(); ++i) {
    ASSERT_TRUE(scheduler_->Step().ok());
    max_running = std::max(max_running, scheduler_->load().running_requests);
    EXPECT_GE(scheduler_->load().kv_pages_free, 0);
  }
  EXPECT_EQ(max_running, 2);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(ResultOf(subs[i]).samples[0].token_ids,
              ExpectedGreedy(Prompt(6, i), 10));
  }
  ExpectAllPagesFree();
}

TEST_F(SchedulerTest, RequestsThatCanNeverFitAreRefused) {
  Build(4);
  EXPECT_FALSE(Scheduler::CheckFits(config_, 4, 10, 10, 1).ok());
  EXPECT_TRUE(Scheduler::CheckFits(config_, 4, 8, 8, 1).ok());
  EXPECT_FALSE(Scheduler::CheckFits(config_, 4, 8, 8, 2).ok());
  EXPECT_FALSE(Scheduler::CheckFits(config_, 1000, 1, 1, 17).ok());
}

TEST_F(SchedulerTest, AbortFinishesWaitingAndRunningRequests) {
  Build(8, /*max_running=*/1);
  Submitted running = Add(Prompt(5, 0), 20);
  Submitted waiting = Add(Prompt(5, 1), 20);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(scheduler_->Step().ok());
  scheduler_->Abort(waiting.id);
  scheduler_->Abort(running.id);
  scheduler_->Abort(12345);  // Unknown: ignored.
  ASSERT_TRUE(scheduler_->Step().ok());
  ASSERT_TRUE(scheduler_->idle());
  GenerateResult r = ResultOf(running);
  EXPECT_EQ(r.samples[0].finish_reason, FinishReason::kAbort);
  EXPECT_EQ(r.samples[0].token_ids, ExpectedGreedy(Prompt(5, 0), 4));
  GenerateResult w = ResultOf(waiting);
  EXPECT_EQ(w.samples[0].finish_reason, FinishReason::kAbort);
  EXPECT_TRUE(w.samples[0].token_ids.empty());
  EXPECT_EQ(scheduler_->stats().aborted_requests, 2);
  ExpectAllPagesFree();
}

TEST_F(SchedulerTest, PrefixCacheReusesWholePromptPages) {
  Build(64);
  const std::vector<int32_t> prompt = Prompt(14, 2);
  Submitted first = Add(prompt, 5);
  RunToIdle();
  Submitted second = Add(prompt, 5);
  RunToIdle();
  EXPECT_EQ(ResultOf(first).cached_prompt_tokens, 0);
  EXPECT_EQ(ResultOf(second).cached_prompt_tokens, 12);  // 3 whole pages.
  EXPECT_EQ(ResultOf(second).samples[0].token_ids, ExpectedGreedy(prompt, 5));
  // A prompt that shares only its first page reuses only that one.
  std::vector<int32_t> other = prompt;
  other[5] = (other[5] + 1) % kVocab;
  Submitted third = Add(other, 5);
  RunToIdle();
  EXPECT_EQ(ResultOf(third).cached_prompt_tokens, 4);
  EXPECT_EQ(ResultOf(third).samples[0].token_ids, ExpectedGreedy(other, 5));

  scheduler_->FlushPrefixCache();
  Submitted after_flush = Add(prompt, 5);
  RunToIdle();
  EXPECT_EQ(ResultOf(after_flush).cached_prompt_tokens, 0);
  EXPECT_EQ(scheduler_->load().kv_pages_free, 64);
}

TEST_F(SchedulerTest, CachedPagesAreEvictedWhenThePoolNeedsThem) {
  Build(8);
  Submitted a = Add(Prompt(16, 0), 4);  // 5 pages, 4 cached afterwards.
  RunToIdle();
  EXPECT_EQ(scheduler_->load().cached_pages, 4);
  Submitted b = Add(Prompt(20, 9), 8);  // 7 pages: evicts.
  RunToIdle();
  EXPECT_EQ(ResultOf(b).samples[0].token_ids, ExpectedGreedy(Prompt(20, 9), 8));
  ExpectAllPagesFree();
  (void)a;
}

TEST_F(SchedulerTest, StopTokenEndsASampleAndKeepsTheToken) {
  Build(64);
  const std::vector<int32_t> prompt = Prompt(7, 4);
  const std::vector<int32_t> expected = ExpectedGreedy(prompt, 20);
  auto r = std::make_unique<PreparedRequest>();
  r->id = 5;
  r->prompt = prompt;
  r->sampling.temperature = 0;
  r->seeds = {1};
  r->stop.max_new_tokens = 20;
  r->stop.stop_token_ids = {expected[3]};
  r->completion = std::make_shared<RequestCompletion>();
  auto done = r->completion;
  scheduler_->Enqueue(std::move(r));
  RunToIdle();
  const SampleOutput out = done->Wait()->samples[0];
  const auto stop_at = std::find(expected.begin(), expected.end(), expected[3]);
  EXPECT_EQ(out.token_ids, std::vector<int32_t>(expected.begin(), stop_at + 1));
  EXPECT_EQ(out.finish_reason, FinishReason::kStop);
  EXPECT_EQ(out.matched_stop_token, expected[3]);
}

TEST_F(SchedulerTest, VersionsFollowTheModel) {
  Build(64);
  Submitted s = Add(Prompt(4, 0), 6);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(scheduler_->Step().ok());
  model_->set_version(7);
  RunToIdle();
  EXPECT_EQ(ResultOf(s).samples[0].weight_versions,
            (std::vector<uint64_t>{0, 0, 0, 7, 7, 7}));
}

TEST_F(SchedulerTest, ShutdownAbortsEverything) {
  Build(64, 1);
  Submitted a = Add(Prompt(4, 0), 30);
  Submitted b = Add(Prompt(4, 1), 30);
  ASSERT_TRUE(scheduler_->Step().ok());
  scheduler_->AbortAll();
  EXPECT_EQ(ResultOf(a).samples[0].finish_reason, FinishReason::kAbort);
  EXPECT_EQ(ResultOf(b).samples[0].finish_reason, FinishReason::kAbort);
  ExpectAllPagesFree();
}

// One count of the pages a request reserves, for the up-front check and for
// admission. Hand-computed: pages of 4 tokens, a 10-token prompt, 6 new
// tokens, 3 samples: each sample's table spans ceil(16 / 4) = 4 pages; the
// prompt's 2 full pages are shared, so each fork adds 2; 8 matched tokens
// are 2 pages the first sample does not allocate.
TEST(SchedulerAdmissionTest, PagesFollowTheSharedPromptAndTheCache) {
  EXPECT_EQ(Scheduler::AdmissionPages(4, 10, 6, 1, 0), 4);
  EXPECT_EQ(Scheduler::AdmissionPages(4, 10, 6, 3, 0), 4 + 2 * 2);
  EXPECT_EQ(Scheduler::AdmissionPages(4, 10, 6, 3, 8), 2 + 2 * 2);
  // A prompt of whole pages: forks share all of them.
  EXPECT_EQ(Scheduler::AdmissionPages(4, 8, 4, 2, 0), 3 + 1);
  SchedulerConfig config;
  config.page_size = 4;
  config.max_running_requests = 8;
  EXPECT_TRUE(Scheduler::CheckFits(config, 8, 10, 6, 3).ok());
  EXPECT_FALSE(Scheduler::CheckFits(config, 7, 10, 6, 3).ok());
}

}  // namespace
}  // namespace rlrt
