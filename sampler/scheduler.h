// Continuous batching: which sequences run in the next forward step, and
// what happens to their outputs. Single-threaded; the engine's scheduler
// thread owns it (with the page pool, the prefix cache and every request in
// it) and calls Step between other work such as weight updates.
//
// A step:
//  1. handles aborts; admits waiting requests first come, first served while
//     the running-sample limit and the KV pool allow (the head of the queue
//     blocks the rest, so a large request is never starved);
//  2. runs one forward over every decoding sample (one token each) and the
//     next chunks of prompts being prefilled (max_prefill_tokens in all);
//  3. when a prompt's last chunk has run, forks its page table into the n
//     samples (full pages shared, the partial page copied) and offers its
//     full pages to the prefix cache;
//  4. draws one token per decoding sample (n per just-prefilled prompt, all
//     from the same logits, each with its own random stream), in parallel
//     on the mesh; appends them, checks stops, and frees a finished sample's
//     pages at once; completes requests whose samples are all finished.
//
// KV admission is conservative: a request is admitted only when the pool
// (free pages plus evictable cached ones) can hold every sample at its full
// length (prompt + max_new_tokens), counting shared prompt pages once. A
// running sequence therefore never runs out of pages and nothing ever has
// to be preempted; the price is that pages reserved for tokens a sample
// never generates sit idle until it finishes.
#ifndef RLRT_SAMPLER_SCHEDULER_H_
#define RLRT_SAMPLER_SCHEDULER_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"
#include "models/forward/page_table.h"
#include "models/tokenizer/tokenizer.h"
#include "partition/mesh.h"
#include "sampler/adapter_registry.h"
#include "sampler/batch_model.h"
#include "sampler/prefix_cache.h"
#include "sampler/request.h"
#include "sampler/request_handle.h"
#include "sampler/sampling.h"

namespace rlrt {

struct SchedulerConfig {
  int64_t max_running_requests = 64;  // Samples, not requests.
  int64_t max_prefill_tokens = 2048;
  int64_t page_size = 16;
  // Ids at or above this are never drawn (the tokenizer's vocabulary may be
  // smaller than the LM head).
  int64_t sample_vocab = 0;
  bool enable_prefix_cache = true;
};

// A validated, tokenized request ready to schedule.
struct PreparedRequest {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  SamplingParams sampling;      // seed unused; see seeds.
  std::vector<uint64_t> seeds;  // One per sample: n = seeds.size().
  StopConditions stop;          // With the end-of-text ids already added.
  bool return_logprobs = false;
  TokenCallback on_token;
  std::shared_ptr<RequestCompletion> completion;
  std::chrono::steady_clock::time_point submitted;
  // The adapter every step of this request runs with; null: the base.
  std::shared_ptr<ResidentAdapter> adapter;
};

struct SchedulerLoad {
  int64_t running_samples = 0;
  int64_t running_requests = 0;
  int64_t waiting_requests = 0;
  int64_t kv_pages_total = 0;
  int64_t kv_pages_free = 0;  // Including pages only the prefix cache holds.
  int64_t cached_pages = 0;
  int64_t page_size = 0;
};

struct SchedulerStats {
  int64_t steps = 0;
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  int64_t cached_prompt_tokens = 0;
  int64_t finished_requests = 0;
  int64_t aborted_requests = 0;
  int64_t failed_requests = 0;
};

class Scheduler {
 public:
  // `model`, `tokenizer` (may be null) and `mesh` (may be null: sampling
  // inline) must outlive the scheduler.
  Scheduler(const SchedulerConfig& config, BatchModel& model,
            const Tokenizer* tokenizer, Mesh* mesh);
  ~Scheduler();

  // Whether a request of this shape could ever be admitted to a scheduler
  // with `config` and a pool of `num_pages` (it fits the pool and the
  // running limit when nothing else runs); says why not. Thread-safe.
  static Status CheckFits(const SchedulerConfig& config, int64_t num_pages,
                          int64_t prompt_tokens, int64_t max_new_tokens,
                          int64_t n);

  // KV pages a request of n samples reserves when it is admitted with its
  // first `matched_tokens` prompt tokens found in the prefix cache: the
  // first sample's table for prompt + max_new_tokens, less the matched
  // pages; each other sample, what remains after the prompt's full pages,
  // which it shares (PageTable::Fork). CheckFits asks it with nothing
  // matched, admission with what the cache matched.
  static int64_t AdmissionPages(int64_t page_size, int64_t prompt_tokens,
                                int64_t max_new_tokens, int64_t n,
                                int64_t matched_tokens);

  void Enqueue(std::unique_ptr<PreparedRequest> request);
  // Takes effect at the next Step; unknown or finished ids are ignored.
  void Abort(uint64_t id);
  // Finishes every request now as aborted (engine shutdown).
  void AbortAll();

  bool idle() const { return waiting_.empty() && active_.empty(); }
  // One step (see above). An error fails the requests of that step only.
  Status Step();
  // Drops cached prefixes, so no later request reuses their KV.
  void FlushPrefixCache();
  // Gives the memory of every free KV page back to the kernel
  // (KvCache::ReleasePages); cached prefixes keep theirs. Free pages are
  // handed out lowest first afterwards.
  Status ReleaseFreeKvMemory();

  SchedulerLoad load() const;
  const SchedulerStats& stats() const { return stats_; }

 private:
  struct Sample;
  struct Active;
  // One logits row of the step's batch.
  struct Row {
    Active* active;
    int32_t sample;  // -1: a prompt chunk.
    int64_t filled_after;
  };
  struct Draw {
    Active* active;
    int32_t sample;
    int64_t row;
    SampledToken token;
    Status status;
  };

  Status EnsureFree(int64_t pages);
  Status ReserveTable(PageTable& table, int64_t tokens);
  void Admit();
  void BuildBatch();
  Status StartSamples(Active& a);
  void RunDraws();
  void CommitDraws(uint64_t base_version);
  // The key space of the prefix cache for `r`'s pages (0: the base).
  static uint64_t CacheSpace(const PreparedRequest& r);
  void FinishSample(Active& a, Sample& s, FinishReason reason);
  void Fail(Active& a, const Status& status);
  void AbortActive(Active& a);
  void AbortWaiting(
      std::deque<std::unique_ptr<PreparedRequest>>::iterator request);
  void RetireFinished();
  GenerateResult BuildResult(const Active& a) const;
  void ReleasePages(Active& a);

  const SchedulerConfig config_;
  BatchModel& model_;
  const Tokenizer* tokenizer_;
  Mesh* mesh_;

  PagePool pool_;
  PrefixCache prefix_cache_;
  // Pages promised to admitted requests but not yet allocated (their
  // samples' pages, taken when the prompt is forked).
  int64_t reserved_pages_ = 0;
  int64_t running_samples_ = 0;

  std::deque<std::unique_ptr<PreparedRequest>> waiting_;
  std::vector<std::unique_ptr<Active>> active_;  // In admission order.
  std::vector<uint64_t> aborts_;

  // Per-step buffers, reused.
  std::vector<SequenceInput> batch_;
  // The distinct adapters (null: the base) of this step's rows, in order of
  // first appearance; BuildBatch groups rows by them.
  std::vector<const LoraAdapter*> adapter_groups_;
  std::vector<Row> rows_;
  std::vector<Draw> draws_;
  std::vector<float> logits_;
  std::vector<SamplingScratch> scratch_;  // One per mesh worker.
  std::vector<int32_t> release_scratch_;  // Free page ids, ascending.

  SchedulerStats stats_;
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SCHEDULER_H_
