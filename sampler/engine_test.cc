#include "sampler/engine.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "models/forward/forward_test_util.h"
#include "models/forward/model_source.h"
#include "models/tokenizer/chat_template.h"
#include "sampler/engine_test_util.h"
#include "sampler/scheduler.h"

namespace rlrt {
namespace {

using testing::GoldenContinuation;
using testing::GreedyText;
using testing::MakeEngine;
using testing::MakeMesh;
using testing::StoriesOptions;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mesh_ = MakeMesh(2);
    engine_ = MakeEngine(StoriesOptions(), mesh_.get());
    ASSERT_NE(engine_, nullptr);
  }
  std::unique_ptr<Mesh> mesh_;
  std::unique_ptr<SamplerEngine> engine_;
};

TEST_F(EngineTest, GreedyTextMatchesTheOriginalModel) {
  const std::vector<int32_t> golden = GoldenContinuation();
  auto r = engine_->Generate(GreedyText("Once upon a time", golden.size()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prompt_ids,
            testing::StoriesReference()["greedy_from_prompt"]["prompt_ids"]
                .get<std::vector<int32_t>>());
  ASSERT_EQ(r->samples.size(), 1u);
  EXPECT_EQ(r->samples[0].token_ids, golden);
  EXPECT_EQ(r->samples[0].finish_reason, FinishReason::kLength);
  EXPECT_EQ(r->completion_tokens, static_cast<int64_t>(golden.size()));
  EXPECT_EQ(r->prompt_tokens, 5);
  auto text = engine_->tokenizer()->Decode(golden);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(r->samples[0].text, *text);
  EXPECT_GT(r->e2e_seconds, 0);
  EXPECT_LE(r->first_token_seconds, r->e2e_seconds);
}

TEST_F(EngineTest, LogsTheReadyLine) {
  auto ready = nlohmann::json::parse(engine_->ready_line());
  EXPECT_EQ(ready["phase"], "engine_ready");
  EXPECT_EQ(ready["num_leaves"].get<int>(), 1 + 5 * 9 + 1);  // Tied.
  EXPECT_EQ(ready["kv_capacity_tokens"].get<int>(), 8192);
  EXPECT_EQ(ready["devices"].size(), 2u);
  EXPECT_EQ(ready["load_format"], "safetensors");

  EngineOptions dummy = StoriesOptions("dummy");
  auto other = MakeEngine(dummy, mesh_.get());
  auto line = nlohmann::json::parse(other->ready_line());
  EXPECT_EQ(line["phase"], "engine_ready_dummy");
  EXPECT_EQ(line["load_format"], "dummy");
}

TEST_F(EngineTest, DtypesAreChosenAndReported) {
  const auto f32 = nlohmann::json::parse(engine_->ready_line());
  EXPECT_EQ(f32["dtype"], "float32");  // stories260K's torch_dtype.
  EXPECT_EQ(f32["kv_cache_dtype"], "float32");
  EngineOptions o = StoriesOptions();
  o.model.dtype = "bfloat16";
  auto bf16 = MakeEngine(o, mesh_.get());
  ASSERT_NE(bf16, nullptr);
  EXPECT_EQ(bf16->weight_dtype(), DType::kBF16);
  auto line = nlohmann::json::parse(bf16->ready_line());
  EXPECT_EQ(line["dtype"], "bfloat16");
  EXPECT_EQ(line["kv_cache_dtype"], "bfloat16");  // Follows the weights.
  EXPECT_EQ(line["kv_capacity_tokens"], f32["kv_capacity_tokens"]);
  EXPECT_EQ(2 * line["kv_bytes"].get<int64_t>(),
            f32["kv_bytes"].get<int64_t>());
  auto r = bf16->Generate(GreedyText("Once upon a time", 8));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->samples[0].token_ids.size(), 8u);

  o.kv_cache_dtype = "float32";
  auto mixed = MakeEngine(o, mesh_.get());
  ASSERT_NE(mixed, nullptr);
  EXPECT_EQ(nlohmann::json::parse(mixed->ready_line())["kv_cache_dtype"],
            "float32");
  o.kv_cache_dtype = "float16";
  auto refused = SamplerEngine::Create(o, mesh_.get());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("kv_cache_dtype"),
            std::string::npos);
  o.kv_cache_dtype = "auto";
  o.model.dtype = "int8";
  EXPECT_FALSE(SamplerEngine::Create(o, mesh_.get()).ok());
}

// The trainer treats the sampler's logprobs as the behaviour policy's; they
// must equal log softmax(logits / T) of a full-sequence forward pass.
TEST_F(EngineTest, ReportedLogprobsEqualTheFullSequenceForward) {
  GenerateRequest req = GreedyText("Lily and Tom went to the park.", 60);
  req.sampling.temperature = 0.8f;
  req.seed = 11;
  req.return_logprobs = true;
  auto r = engine_->Generate(req);
  ASSERT_TRUE(r.ok()) << r.status();
  const SampleOutput& out = r->samples[0];
  ASSERT_EQ(out.logprobs.size(), out.token_ids.size());

  auto loaded = testing::LoadStories();
  auto model = Transformer::Create(loaded.config, loaded.weights, nullptr);
  ASSERT_TRUE(model.ok());
  std::vector<int32_t> all = r->prompt_ids;
  all.insert(all.end(), out.token_ids.begin(), out.token_ids.end());
  const std::vector<float> logits =
      testing::SequenceLogits(**model, all, /*token_by_token=*/false);
  const int64_t vocab = loaded.config.vocab_size;
  double worst = 0;
  for (size_t i = 0; i < out.token_ids.size(); ++i) {
    const float* row = logits.data() + (r->prompt_ids.size() - 1 + i) * vocab;
    double max = -INFINITY;
    for (int64_t v = 0; v < vocab; ++v) max = std::max(max, row[v] / 0.8);
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] / 0.8 - max);
    const double expected = row[out.token_ids[i]] / 0.8 - max - std::log(sum);
    worst = std::max(worst, std::fabs(expected - out.logprobs[i]));
  }
  EXPECT_LE(worst, 1e-5);
}

TEST_F(EngineTest, SameSeedSameTokensWhateverElseIsInTheBatch) {
  GenerateRequest probe = GreedyText("Once upon a time", 80);
  probe.sampling.temperature = 1.0f;
  probe.seed = 5;
  probe.return_logprobs = true;
  auto alone = engine_->Generate(probe);
  ASSERT_TRUE(alone.ok());

  std::vector<RequestHandle> others;
  const char* prompts[] = {"Lily", "The cat sat", "Tom had a big red ball and",
                           "One day"};
  for (int i = 0; i < 8; ++i) {
    GenerateRequest other = GreedyText(prompts[i % 4], 20 + 13 * i);
    other.sampling.temperature = 0.7f + 0.1f * i;
    other.seed = 100 + i;
    other.n = 1 + i % 3;
    auto h = engine_->Submit(other);
    ASSERT_TRUE(h.ok());
    others.push_back(*h);
    if (i == 3) {
      auto busy = engine_->Submit(probe);
      ASSERT_TRUE(busy.ok());
      others.push_back(*busy);
    }
  }
  for (auto& h : others) ASSERT_TRUE(h.Wait().ok());
  auto crowded = others[4].Wait();
  EXPECT_EQ(crowded->samples[0].token_ids, alone->samples[0].token_ids);
  EXPECT_EQ(crowded->samples[0].logprobs, alone->samples[0].logprobs);
  EXPECT_EQ(crowded->samples[0].seed, alone->samples[0].seed);
}

TEST_F(EngineTest, GroupSamplesHaveTheirOwnStreams) {
  GenerateRequest group = GreedyText("Once upon a time", 30);
  group.sampling.temperature = 1.0f;
  group.seed = 9;
  group.n = 8;
  auto g = engine_->Generate(group);
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->samples.size(), 8u);
  GenerateRequest single = group;
  single.n = 1;
  auto s = engine_->Generate(single);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(g->samples[0].token_ids, s->samples[0].token_ids);
  int distinct = 0;
  for (int i = 1; i < 8; ++i)
    distinct += g->samples[i].token_ids != g->samples[0].token_ids;
  EXPECT_GE(distinct, 6);
  EXPECT_EQ(g->completion_tokens, 8 * 30);
}

TEST_F(EngineTest, BadRequestsFailAloneWhileOthersRun) {
  const std::vector<int32_t> golden = GoldenContinuation();
  auto good = engine_->Submit(GreedyText("Once upon a time", golden.size()));
  ASSERT_TRUE(good.ok());

  std::vector<std::pair<std::string, GenerateRequest>> bad;
  bad.emplace_back("empty prompt", GreedyText("", 10));
  GenerateRequest two_forms = GreedyText("a", 10);
  two_forms.input_ids = {1, 2};
  bad.emplace_back("two prompt forms", two_forms);
  bad.emplace_back("over the context", GreedyText("Once upon a time", 508));
  for (int32_t id : {512, -1, 100000}) {
    GenerateRequest r;
    r.input_ids = {1, id};
    bad.emplace_back("unknown id " + std::to_string(id), r);
  }
  auto with = [](auto change) {
    GenerateRequest r = GreedyText("Hi", 4);
    change(r);
    return r;
  };
  bad.emplace_back("temperature < 0",
                   with([](auto& r) { r.sampling.temperature = -0.5f; }));
  bad.emplace_back("temperature nan",
                   with([](auto& r) { r.sampling.temperature = NAN; }));
  bad.emplace_back("top_p 0", with([](auto& r) { r.sampling.top_p = 0; }));
  bad.emplace_back("top_p > 1", with([](auto& r) { r.sampling.top_p = 1.5f; }));
  bad.emplace_back("top_k < 0", with([](auto& r) { r.sampling.top_k = -1; }));
  bad.emplace_back("min_p 1", with([](auto& r) { r.sampling.min_p = 1.0f; }));
  bad.emplace_back("n 0", with([](auto& r) { r.n = 0; }));
  bad.emplace_back("n over the limit", with([](auto& r) { r.n = 33; }));
  bad.emplace_back("max_new_tokens 0",
                   with([](auto& r) { r.stop.max_new_tokens = 0; }));
  bad.emplace_back("empty stop string",
                   with([](auto& r) { r.stop.stop_strings = {""}; }));
  bad.emplace_back("negative stop id",
                   with([](auto& r) { r.stop.stop_token_ids = {-3}; }));
  bad.emplace_back("unknown chat role", with([](auto& r) {
                     r.text.clear();
                     r.messages = {{"wizard", "hi", std::nullopt}};
                   }));
  for (auto& [what, request] : bad) {
    auto h = engine_->Submit(request);
    EXPECT_FALSE(h.ok()) << what;
    if (!h.ok()) {
      EXPECT_NE(h.status().code(), StatusCode::kInternal) << what;
      EXPECT_FALSE(h.status().message().empty()) << what;
    }
  }
  auto result = good->Wait();
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->samples[0].token_ids, golden);
}

// max_new_tokens near 2^63 used to overflow prompt + max_new_tokens, skip the
// context check and reach an allocation of that size. It gets the context
// message like any other request that is too long.
TEST_F(EngineTest, HugeMaxNewTokensGetTheContextMessage) {
  for (const int64_t huge :
       {std::numeric_limits<int64_t>::max(),
        std::numeric_limits<int64_t>::max() - 3, int64_t{1} << 62}) {
    auto r = engine_->Generate(GreedyText("Once upon a time", huge));
    ASSERT_FALSE(r.ok()) << huge;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("exceeds the context length 512"),
              std::string::npos)
        << r.status();
  }
  SchedulerConfig config;
  config.page_size = 16;
  config.max_running_requests = 4;
  const Status fits = Scheduler::CheckFits(
      config, 64, 5, std::numeric_limits<int64_t>::max() - 2, 1);
  EXPECT_EQ(fits.code(), StatusCode::kInvalidArgument) << fits;
  EXPECT_TRUE(engine_->Generate(GreedyText("Once upon a time", 4)).ok());
}

TEST_F(EngineTest, StopStringsCutTheTextAndStreamingAddsUp) {
  const std::vector<int32_t> golden = GoldenContinuation();
  const std::string full = *engine_->tokenizer()->Decode(golden);
  ASSERT_GT(full.size(), 40u);
  const std::string stop = full.substr(25, 4);
  const size_t cut = full.find(stop);
  GenerateRequest r = GreedyText("Once upon a time", golden.size());
  r.stop.stop_strings = {stop, "never appears in a story"};
  std::string streamed;
  std::vector<int32_t> streamed_ids;
  FinishReason last = FinishReason::kNone;
  r.on_token = [&](const TokenEvent& e) {
    streamed += e.text_delta;
    streamed_ids.push_back(e.token);
    last = e.finish_reason;
  };
  auto result = engine_->Generate(r);
  ASSERT_TRUE(result.ok());
  const SampleOutput& out = result->samples[0];
  EXPECT_EQ(out.finish_reason, FinishReason::kStop);
  EXPECT_EQ(out.text, full.substr(0, cut));
  EXPECT_EQ(out.matched_stop_string, stop);
  EXPECT_LT(out.token_ids.size(), golden.size());
  EXPECT_EQ(out.token_ids,
            std::vector<int32_t>(golden.begin(),
                                 golden.begin() + out.token_ids.size()));
  EXPECT_EQ(streamed_ids, out.token_ids);
  EXPECT_EQ(last, FinishReason::kStop);
  // Text that could still turn into the stop string is held back, so a
  // stream never shows it.
  EXPECT_EQ(streamed, out.text);
}

// The tiny random Qwen3 fixture names end-of-text ids 1 and 2 and samples
// over 96 ids, so at temperature 1 many samples meet one within 60 tokens.
TEST_F(EngineTest, EndOfTextStopsUnlessIgnored) {
  EngineOptions o;
  o.model.model_dir = RLRT_SOURCE_DIR "/tests/reference/fixtures/qwen3_untied";
  o.max_total_tokens = 2048;
  auto engine = MakeEngine(o, mesh_.get());
  ASSERT_NE(engine, nullptr);
  GenerateRequest r;
  r.input_ids = {5, 6, 7};
  r.sampling.temperature = 1.0f;
  r.stop.max_new_tokens = 60;
  r.n = 16;
  r.seed = 3;
  auto stopped = engine->Generate(r);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  r.ignore_eos = true;
  auto ignored = engine->Generate(r);
  ASSERT_TRUE(ignored.ok());
  int stops = 0;
  for (int i = 0; i < 16; ++i) {
    const SampleOutput& s = stopped->samples[i];
    const SampleOutput& full = ignored->samples[i];
    EXPECT_EQ(full.token_ids.size(), 60u);
    // Same stream: the stopped sample is a prefix of the ignoring one.
    EXPECT_TRUE(std::equal(s.token_ids.begin(), s.token_ids.end(),
                           full.token_ids.begin()));
    const auto eos = std::find_if(full.token_ids.begin(), full.token_ids.end(),
                                  [](int32_t t) { return t == 1 || t == 2; });
    if (eos == full.token_ids.end()) {
      EXPECT_EQ(s.finish_reason, FinishReason::kLength);
      continue;
    }
    ++stops;
    EXPECT_EQ(s.finish_reason, FinishReason::kStop);
    EXPECT_EQ(s.token_ids.size(), size_t(eos - full.token_ids.begin()) + 1);
    EXPECT_EQ(s.matched_stop_token, *eos);  // Kept in the ids.
  }
  EXPECT_GE(stops, 3);  // 6 of 16 with this seed.
}

TEST_F(EngineTest, AbortFromAnotherThreadKeepsWhatWasGenerated) {
  std::atomic<int> seen{0};
  GenerateRequest r = GreedyText("Once upon a time", 500);
  r.on_token = [&](const TokenEvent&) { seen.fetch_add(1); };
  auto h = engine_->Submit(r);
  ASSERT_TRUE(h.ok());
  while (seen.load() < 5) std::this_thread::yield();
  engine_->Abort(h->id());
  auto result = h->Wait();
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->samples[0].finish_reason, FinishReason::kAbort);
  EXPECT_GE(result->samples[0].token_ids.size(), 5u);
  EXPECT_LT(result->samples[0].token_ids.size(), 500u);
  // Its pages are free again.
  for (int i = 0; i < 1000 && engine_->Stats().load.running_samples > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(engine_->Stats().load.kv_pages_free,
            engine_->Stats().load.kv_pages_total);
}

TEST(EngineKvTest, RequestsWaitForAFullPoolAndAllFinish) {
  auto mesh = MakeMesh(2);
  EngineOptions o = StoriesOptions();
  o.max_total_tokens = 160;  // 10 pages; each request below needs 4.
  auto engine = MakeEngine(o, mesh.get());
  const std::vector<int32_t> golden = GoldenContinuation();
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 6; ++i) {
    auto h = engine->Submit(GreedyText("Once upon a time", golden.size()));
    ASSERT_TRUE(h.ok());
    handles.push_back(*h);
  }
  int64_t max_running = 0;
  while (!handles.back().done()) {
    max_running = std::max(max_running, engine->Stats().load.running_requests);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  for (auto& h : handles) EXPECT_EQ(h.Wait()->samples[0].token_ids, golden);
  EXPECT_LE(max_running, 2);
  // A request bigger than the whole pool is refused, not queued forever.
  auto too_big = engine->Submit(GreedyText("Once upon a time", 300));
  EXPECT_EQ(too_big.status().code(), StatusCode::kInvalidArgument);
}

// Bytes of [data, data + bytes) the kernel holds in memory (mincore).
size_t ResidentBytes(const void* data, size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((bytes + page - 1) / page);
  if (mincore(const_cast<void*>(data), bytes, resident.data()) != 0) {
    ADD_FAILURE() << "mincore failed";
    return 0;
  }
  size_t count = 0;
  for (unsigned char r : resident) count += r & 1;
  return count * page;
}

TEST(EngineKvTest, AnIdleEngineGivesItsKvPagesMemoryBack) {
  auto mesh = MakeMesh(2);
  for (bool release : {true, false}) {
    SCOPED_TRACE(release ? "release" : "keep");
    EngineOptions o = StoriesOptions();
    o.enable_prefix_cache = false;  // Cached prompt pages keep their memory.
    o.release_idle_kv_memory = release;
    auto engine = MakeEngine(o, mesh.get());
    ASSERT_NE(engine, nullptr);
    const void* kv = engine->buffers().kv_cache;
    const size_t kv_bytes =
        nlohmann::json::parse(engine->ready_line())["kv_bytes"].get<size_t>();
    EXPECT_EQ(ResidentBytes(kv, kv_bytes), 0u);
    const std::vector<int32_t> golden = GoldenContinuation();
    auto first =
        engine->Generate(GreedyText("Once upon a time", golden.size()));
    ASSERT_TRUE(first.ok()) << first.status();
    // The engine releases after the step that retires the request.
    size_t resident = ResidentBytes(kv, kv_bytes);
    for (int i = 0; i < (release ? 2000 : 100) && resident > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      resident = ResidentBytes(kv, kv_bytes);
    }
    if (release) {
      EXPECT_EQ(resident, 0u);
    } else {
      EXPECT_GT(resident, 0u);
    }
    // Pages faulted back in read as zeros and are written before they are
    // read: the same request gives the same tokens.
    auto again =
        engine->Generate(GreedyText("Once upon a time", golden.size()));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->samples[0].token_ids, golden);
    EXPECT_EQ(first->samples[0].token_ids, golden);
  }
}

// Pages the prefix cache holds keep their memory until they are freed; an
// update (here a perturbation) flushes the cache, and the idle engine then
// gives those pages back too.
TEST(EngineKvTest, PagesFreedByAFlushAreGivenBackToo) {
  auto mesh = MakeMesh(2);
  EngineOptions o = StoriesOptions();
  o.release_idle_kv_memory = true;
  auto engine = MakeEngine(o, mesh.get());
  ASSERT_NE(engine, nullptr);
  const void* kv = engine->buffers().kv_cache;
  const auto ready = nlohmann::json::parse(engine->ready_line());
  const size_t kv_bytes = ready["kv_bytes"].get<size_t>();
  // Two full pages of prompt to cache.
  auto r = engine->Generate(GreedyText(
      "Once upon a time, there was a little girl named Lily. She loved to "
      "play outside in the park with her friends every day.",
      4));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_GE(r->prompt_tokens, 32);
  const int64_t cached = engine->Stats().load.cached_pages;
  ASSERT_GT(cached, 0);
  // Each cached page's keys and values, in every layer, keep the OS pages
  // they lie in.
  const size_t os_page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t cached_bound = cached * 2 * 5 /*layers*/ * os_page;
  size_t resident = ResidentBytes(kv, kv_bytes);
  for (int i = 0; i < 2000 && resident > cached_bound; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    resident = ResidentBytes(kv, kv_bytes);
  }
  EXPECT_GT(resident, 0u);
  EXPECT_LE(resident, cached_bound);
  ASSERT_TRUE(engine->PerturbWeights(1, 1e-3, 1).ok());
  EXPECT_EQ(engine->Stats().load.cached_pages, 0);
  for (int i = 0; i < 2000 && resident > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    resident = ResidentBytes(kv, kv_bytes);
  }
  EXPECT_EQ(resident, 0u);
}

TEST(EngineChatTest, ChatMessagesGoThroughTheTemplate) {
  auto mesh = MakeMesh(2);
  EngineOptions o;
  o.model.preset = "qwen3-tiny";
  o.model.load_format = "dummy";
  o.tokenizer_dir = RLRT_SHARED_DIR "/models/qwen3-tokenizer";
  o.max_total_tokens = 2048;
  o.context_length = 1024;
  auto engine = MakeEngine(o, mesh.get());
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->vocab_size(), 151669);  // The tokenizer's, not 151936.
  GenerateRequest r;
  r.messages = {{"system", "You are helpful.", std::nullopt},
                {"user", "你是谁", std::nullopt}};
  r.chat_options.enable_thinking = false;
  r.sampling.temperature = 1.0f;
  r.stop.max_new_tokens = 64;
  r.ignore_eos = true;
  r.n = 4;
  auto result = engine->Generate(r);
  ASSERT_TRUE(result.ok()) << result.status();
  auto text = ApplyQwen3ChatTemplate(r.messages, r.chat_options);
  EXPECT_EQ(result->prompt_ids, engine->tokenizer()->Encode(*text));
  for (const SampleOutput& s : result->samples) {
    for (int32_t id : s.token_ids) EXPECT_LT(id, 151669);
    EXPECT_EQ(s.text, *engine->tokenizer()->Decode(s.token_ids));
  }
}

}  // namespace
}  // namespace rlrt
