#include "sampler/scheduler.h"

#include <algorithm>
#include <utility>

#include "base/timing.h"
#include "partition/parallel.h"

namespace rlrt {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

const LoraAdapter* AdapterOf(const PreparedRequest& r) {
  return r.adapter ? r.adapter->adapter.get() : nullptr;
}

}  // namespace

struct Scheduler::Sample {
  Sample(int32_t index, PageTable table, const Tokenizer* tokenizer,
         const PreparedRequest& r)
      : table(std::move(table)),
        tracker(tokenizer, r.stop),
        params(r.sampling) {
    params.seed = r.seeds[index];
    out.seed = params.seed;
  }
  PageTable table;
  OutputTracker tracker;
  SamplingParams params;
  SampleOutput out;           // logprobs and versions; the rest at the end.
  int32_t pending_token = 0;  // Drawn, not yet in the KV cache.
  size_t streamed = 0;        // Text bytes already given to on_token.
  bool finished = false;
};

struct Scheduler::Active {
  Active(std::unique_ptr<PreparedRequest> r, PageTable table)
      : req(std::move(r)), prompt_table(std::move(table)) {}
  std::unique_ptr<PreparedRequest> req;
  PageTable prompt_table;  // Until the prompt is prefilled and forked.
  int64_t prefilled = 0;   // Prompt positions whose KV is computed.
  int64_t step_chunk = 0;  // Prompt tokens in this step's batch.
  int64_t cached_tokens = 0;
  // The prefix cache's key space when admitted: the prompt's pages are
  // offered to it only if the adapter version did not change meanwhile.
  uint64_t cache_space = 0;
  int64_t reserved_pages = 0;   // Of Scheduler::reserved_pages_.
  std::vector<Sample> samples;  // Empty while prefilling.
  int64_t unfinished = 0;
  // Longest stop string minus one: how much streamed text to hold back.
  size_t stop_hold = 0;
  std::optional<Status> error;
  SteadyClock::time_point admitted;
  SteadyClock::time_point first_token;
  int64_t n() const { return static_cast<int64_t>(req->seeds.size()); }
  int64_t prompt_size() const {
    return static_cast<int64_t>(req->prompt.size());
  }
  bool done() const {
    return error.has_value() || (!samples.empty() && unfinished == 0);
  }
};

Scheduler::Scheduler(const SchedulerConfig& config, BatchModel& model,
                     const Tokenizer* tokenizer, Mesh* mesh)
    : config_(config),
      model_(model),
      tokenizer_(tokenizer),
      mesh_(mesh),
      pool_(model.cache().shape().num_pages),
      prefix_cache_(config.page_size) {
  batch_.reserve(config_.max_running_requests);
  release_scratch_.reserve(pool_.num_pages());
  adapter_groups_.reserve(8);
  rows_.reserve(config_.max_running_requests);
  draws_.reserve(config_.max_running_requests);
  logits_.resize(static_cast<size_t>(config_.max_running_requests) *
                 model_.logits_width());
  for (int i = 0; i < NumWorkers(mesh_); ++i)
    scratch_.emplace_back(config_.sample_vocab);
}

Scheduler::~Scheduler() { AbortAll(); }

int64_t Scheduler::AdmissionPages(int64_t page_size, int64_t prompt_tokens,
                                  int64_t max_new_tokens, int64_t n,
                                  int64_t matched_tokens) {
  const int64_t per_sequence =
      CeilDiv(prompt_tokens + max_new_tokens, page_size);
  const int64_t first = per_sequence - matched_tokens / page_size;
  const int64_t per_fork = per_sequence - prompt_tokens / page_size;
  return first + (n - 1) * per_fork;
}

Status Scheduler::CheckFits(const SchedulerConfig& config, int64_t num_pages,
                            int64_t prompt_tokens, int64_t max_new_tokens,
                            int64_t n) {
  if (n > config.max_running_requests) {
    return InvalidArgumentError("n = " + std::to_string(n) +
                                " exceeds max_running_requests = " +
                                std::to_string(config.max_running_requests));
  }
  // No sum below may overflow: a request longer than the pool is refused
  // before anything is added up.
  const int64_t pool_tokens = num_pages * config.page_size;
  if (prompt_tokens > pool_tokens ||
      max_new_tokens > pool_tokens - prompt_tokens) {
    return InvalidArgumentError(
        "request needs more than the " + std::to_string(pool_tokens) +
        " KV tokens of the pool (prompt " + std::to_string(prompt_tokens) +
        " + max_new_tokens " + std::to_string(max_new_tokens) + ")");
  }
  const int64_t pages = AdmissionPages(config.page_size, prompt_tokens,
                                       max_new_tokens, n, /*matched_tokens=*/0);
  if (pages > num_pages) {
    return InvalidArgumentError(
        "request needs " + std::to_string(pages * config.page_size) +
        " KV tokens (prompt " + std::to_string(prompt_tokens) +
        " + max_new_tokens " + std::to_string(max_new_tokens) +
        ", n = " + std::to_string(n) + ") but the pool holds " +
        std::to_string(num_pages * config.page_size));
  }
  return OkStatus();
}

void Scheduler::Enqueue(std::unique_ptr<PreparedRequest> request) {
  waiting_.push_back(std::move(request));
}

void Scheduler::Abort(uint64_t id) { aborts_.push_back(id); }

Status Scheduler::EnsureFree(int64_t pages) {
  const int64_t missing = pages - pool_.num_free();
  if (missing > 0) prefix_cache_.Evict(missing, pool_);
  if (pool_.num_free() < pages)
    return InternalError("KV pool short of pages it had reserved");
  return OkStatus();
}

Status Scheduler::ReserveTable(PageTable& table, int64_t tokens) {
  const int64_t needed = CeilDiv(tokens, config_.page_size) -
                         static_cast<int64_t>(table.pages().size());
  if (needed > 0) RETURN_IF_ERROR(EnsureFree(needed));
  return table.Reserve(pool_, tokens);
}

void Scheduler::Admit() {
  while (!waiting_.empty()) {
    PreparedRequest& r = *waiting_.front();
    const int64_t n = static_cast<int64_t>(r.seeds.size());
    const int64_t prompt = static_cast<int64_t>(r.prompt.size());
    if (running_samples_ + n > config_.max_running_requests) return;

    // At least the last prompt token is computed: its logits are needed.
    std::vector<int32_t> matched_pages;
    const int64_t matched =
        config_.enable_prefix_cache
            ? prefix_cache_.Match(r.prompt, prompt - 1, pool_, &matched_pages,
                                  CacheSpace(r))
            : 0;
    const int64_t needed = AdmissionPages(config_.page_size, prompt,
                                          r.stop.max_new_tokens, n, matched);
    // The first sample's table is allocated now; the other samples' pages
    // stay reserved until they fork from it.
    const int64_t for_forks =
        needed - AdmissionPages(config_.page_size, prompt,
                                r.stop.max_new_tokens, 1, matched);
    // Cached pages no sequence uses count as free: admission evicts them
    // when it needs them. Their count is kept by the pool, so neither this
    // nor load() (published after every step) walks the cache.
    const int64_t free = pool_.num_free() - reserved_pages_;
    if (needed > free + prefix_cache_.Evictable(pool_)) {
      for (int32_t page : matched_pages) pool_.Release(page);
      return;  // Waits until running sequences free pages.
    }

    auto active = std::make_unique<Active>(
        std::move(waiting_.front()),
        PageTable(config_.page_size, std::move(matched_pages), matched));
    waiting_.pop_front();
    Status reserved = ReserveTable(active->prompt_table,
                                   prompt + active->req->stop.max_new_tokens);
    active->admitted = SteadyClock::now();
    for (const std::string& stop : active->req->stop.stop_strings)
      active->stop_hold = std::max(active->stop_hold, stop.size() - 1);
    active->prefilled = matched;
    active->cached_tokens = matched;
    active->cache_space = CacheSpace(*active->req);
    stats_.cached_prompt_tokens += matched;
    if (!reserved.ok()) {
      active->error = reserved;
    } else {
      active->reserved_pages = for_forks;
      reserved_pages_ += active->reserved_pages;
    }
    running_samples_ += n;
    active_.push_back(std::move(active));
  }
}

void Scheduler::BuildBatch() {
  batch_.clear();
  rows_.clear();
  // Prompt chunks are budgeted first come, first served.
  int64_t prefill_budget = config_.max_prefill_tokens;
  adapter_groups_.clear();
  for (auto& a : active_) {
    a->step_chunk = 0;
    if (a->done()) continue;
    if (a->samples.empty() && prefill_budget > 0) {
      a->step_chunk = std::min(prefill_budget, a->prompt_size() - a->prefilled);
      prefill_budget -= a->step_chunk;
    }
    const LoraAdapter* adapter = AdapterOf(*a->req);
    if (std::find(adapter_groups_.begin(), adapter_groups_.end(), adapter) ==
        adapter_groups_.end()) {
      adapter_groups_.push_back(adapter);
    }
  }
  // Rows of one adapter are emitted together: the forward runs each run of
  // rows with one adapter as one low-rank product, not one per row. Every
  // row's result is the same wherever it sits in the batch.
  for (const LoraAdapter* adapter : adapter_groups_) {
    for (auto& a : active_) {
      if (a->done() || AdapterOf(*a->req) != adapter) continue;
      if (!a->samples.empty()) {
        for (int32_t i = 0; i < static_cast<int32_t>(a->samples.size()); ++i) {
          Sample& s = a->samples[i];
          if (s.finished) continue;
          batch_.push_back({{&s.pending_token, 1},
                            s.table.filled(),
                            s.table.pages(),
                            false,
                            adapter});
          rows_.push_back({a.get(), i, s.table.filled() + 1});
        }
      } else if (a->step_chunk > 0) {
        std::span<const int32_t> tokens(a->req->prompt.data() + a->prefilled,
                                        a->step_chunk);
        batch_.push_back(
            {tokens, a->prefilled, a->prompt_table.pages(), false, adapter});
        rows_.push_back({a.get(), -1, a->prefilled + a->step_chunk});
      }
    }
  }
}

Status Scheduler::StartSamples(Active& a) {
  const PreparedRequest& r = *a.req;
  const int64_t total = a.prompt_size() + r.stop.max_new_tokens;
  a.samples.reserve(a.n());
  a.samples.emplace_back(0, std::move(a.prompt_table), tokenizer_, r);
  a.prompt_table = PageTable(config_.page_size);
  PageTable& first = a.samples[0].table;
  if (config_.enable_prefix_cache && a.cache_space == CacheSpace(r)) {
    prefix_cache_.Insert(r.prompt, first.pages(), pool_, a.cache_space);
  }
  for (int32_t i = 1; i < a.n(); ++i) {
    // Fork and reserve draw on this request's reservation.
    RETURN_IF_ERROR(EnsureFree(1));
    ASSIGN_OR_RETURN(PageTable fork, first.Fork(pool_, model_.cache()));
    a.samples.emplace_back(i, std::move(fork), tokenizer_, r);
    RETURN_IF_ERROR(ReserveTable(a.samples.back().table, total));
  }
  reserved_pages_ -= a.reserved_pages;
  a.reserved_pages = 0;
  a.unfinished = a.n();
  return OkStatus();
}

void Scheduler::RunDraws() {
  const float* logits = logits_.data();
  const int64_t width = model_.logits_width();
  Status s = ParallelForOrInline(
      mesh_, static_cast<int64_t>(draws_.size()), [&](const Shard& shard) {
        SamplingScratch& scratch = scratch_[shard.worker];
        for (int64_t i = shard.begin; i < shard.end; ++i) {
          Draw& d = draws_[i];
          Sample& s = d.active->samples[d.sample];
          StatusOr<SampledToken> t =
              SampleToken(logits + d.row * width, config_.sample_vocab,
                          s.params, s.tracker.ids().size(), scratch);
          if (t.ok()) {
            d.token = *t;
          } else {
            d.status = t.status();
          }
        }
        return OkStatus();
      });
  if (!s.ok()) {
    for (Draw& d : draws_) d.status = s;
  }
}

uint64_t Scheduler::CacheSpace(const PreparedRequest& r) {
  return r.adapter ? r.adapter->CacheSpace() : 0;
}

void Scheduler::CommitDraws(uint64_t base_version) {
  const SteadyClock::time_point now = SteadyClock::now();
  for (Draw& d : draws_) {
    Active& a = *d.active;
    if (a.done()) continue;
    // With an adapter over a frozen base, the adapter's version is the
    // policy's version.
    const uint64_t version = a.req->adapter
                                 ? a.req->adapter->adapter->leaves().version()
                                 : base_version;
    if (!d.status.ok()) {
      Fail(a, d.status);
      continue;
    }
    Sample& s = a.samples[d.sample];
    if (a.first_token == SteadyClock::time_point()) a.first_token = now;
    StatusOr<FinishReason> finish = s.tracker.Append(d.token.token);
    if (!finish.ok()) {
      Fail(a, finish.status());
      continue;
    }
    s.pending_token = d.token.token;
    if (a.req->return_logprobs) s.out.logprobs.push_back(d.token.logprob);
    s.out.weight_versions.push_back(version);
    ++stats_.decode_tokens;
    if (a.req->on_token) {
      // Text that a stop string may still claim is held back until the
      // sample finishes, so a stream never shows a stop string.
      const std::string& text = s.tracker.text();
      const size_t safe =
          *finish != FinishReason::kNone
              ? text.size()
              : text.size() - std::min(text.size(), a.stop_hold);
      std::string_view delta;
      if (safe > s.streamed) {
        delta = std::string_view(text).substr(s.streamed, safe - s.streamed);
        s.streamed = safe;
      }
      a.req->on_token(TokenEvent{a.req->id, d.sample, d.token.token,
                                 d.token.logprob, version, delta, *finish});
    }
    if (*finish != FinishReason::kNone) FinishSample(a, s, *finish);
  }
}

void Scheduler::FinishSample(Active& a, Sample& s, FinishReason reason) {
  if (s.finished) return;
  s.finished = true;
  s.out.finish_reason = reason;
  s.table.Release(pool_);
  --a.unfinished;
}

void Scheduler::ReleasePages(Active& a) {
  a.prompt_table.Release(pool_);
  for (Sample& s : a.samples) s.table.Release(pool_);
  reserved_pages_ -= a.reserved_pages;
  a.reserved_pages = 0;
}

void Scheduler::Fail(Active& a, const Status& status) {
  if (!a.error) a.error = status;
  ReleasePages(a);
}

void Scheduler::AbortActive(Active& a) {
  if (a.done()) return;
  if (a.samples.empty()) {
    a.prompt_table.Release(pool_);
    for (int32_t i = 0; i < a.n(); ++i)
      a.samples.emplace_back(i, PageTable(config_.page_size), tokenizer_,
                             *a.req);
    a.unfinished = a.n();
  }
  for (Sample& s : a.samples) FinishSample(a, s, FinishReason::kAbort);
  ReleasePages(a);
  ++stats_.aborted_requests;
}

GenerateResult Scheduler::BuildResult(const Active& a) const {
  const PreparedRequest& r = *a.req;
  GenerateResult result;
  result.id = r.id;
  result.prompt_ids = r.prompt;
  result.prompt_tokens = a.prompt_size();
  result.cached_prompt_tokens = a.cached_tokens;
  const SteadyClock::time_point now = SteadyClock::now();
  result.queue_seconds = SecondsBetween(r.submitted, a.admitted);
  result.e2e_seconds = SecondsBetween(r.submitted, now);
  if (a.first_token != SteadyClock::time_point())
    result.first_token_seconds = SecondsBetween(r.submitted, a.first_token);
  for (const Sample& s : a.samples) {
    SampleOutput out = s.out;
    out.token_ids = s.tracker.ids();
    out.text = s.tracker.text();
    out.matched_stop_string = s.tracker.matched_stop_string();
    out.matched_stop_token = s.tracker.matched_stop_token();
    result.completion_tokens += static_cast<int64_t>(out.token_ids.size());
    result.samples.push_back(std::move(out));
  }
  return result;
}

void Scheduler::RetireFinished() {
  auto keep = active_.begin();
  for (auto it = active_.begin(); it != active_.end(); ++it) {
    Active& a = **it;
    if (!a.done()) {
      *keep++ = std::move(*it);
      continue;
    }
    ReleasePages(a);
    running_samples_ -= a.n();
    if (a.error) {
      ++stats_.failed_requests;
      a.req->completion->Finish(*a.error);
    } else {
      ++stats_.finished_requests;
      a.req->completion->Finish(BuildResult(a));
    }
  }
  active_.erase(keep, active_.end());
}

void Scheduler::AbortWaiting(
    std::deque<std::unique_ptr<PreparedRequest>>::iterator it) {
  Active a(std::move(*it), PageTable(config_.page_size));
  waiting_.erase(it);
  a.admitted = SteadyClock::now();
  AbortActive(a);
  a.req->completion->Finish(BuildResult(a));
}

void Scheduler::AbortAll() {
  while (!waiting_.empty()) AbortWaiting(waiting_.begin());
  for (auto& a : active_) AbortActive(*a);
  RetireFinished();
  aborts_.clear();
}

Status Scheduler::Step() {
  // Aborts first, so an aborted request never runs another step.
  for (uint64_t id : aborts_) {
    auto waiting = std::find_if(waiting_.begin(), waiting_.end(),
                                [id](const auto& r) { return r->id == id; });
    if (waiting != waiting_.end()) {
      AbortWaiting(waiting);
      continue;
    }
    for (auto& a : active_) {
      if (a->req->id == id) AbortActive(*a);
    }
  }
  aborts_.clear();
  RetireFinished();
  Admit();
  RetireFinished();  // Admission can fail a request (it never should).

  BuildBatch();
  if (batch_.empty()) return OkStatus();
  ++stats_.steps;
  const int64_t width = model_.logits_width();
  const uint64_t version = model_.weight_version();
  Status forward = model_.Forward(
      batch_, {logits_.data(), static_cast<size_t>(rows_.size() * width)});
  if (!forward.ok()) {
    for (const Row& row : rows_) Fail(*row.active, forward);
    RetireFinished();
    return forward;
  }

  draws_.clear();
  for (int64_t i = 0; i < static_cast<int64_t>(rows_.size()); ++i) {
    const Row& row = rows_[i];
    Active& a = *row.active;
    if (row.sample >= 0) {
      a.samples[row.sample].table.SetFilled(row.filled_after);
      draws_.push_back({&a, row.sample, i, {}, OkStatus()});
      continue;
    }
    stats_.prefill_tokens += row.filled_after - a.prefilled;
    a.prefilled = row.filled_after;
    a.prompt_table.SetFilled(row.filled_after);
    if (a.prefilled < a.prompt_size()) continue;
    Status started = StartSamples(a);
    if (!started.ok()) {
      Fail(a, started);
      continue;
    }
    for (int32_t s = 0; s < a.n(); ++s)
      draws_.push_back({&a, s, i, {}, OkStatus()});
  }
  RunDraws();
  CommitDraws(version);
  RetireFinished();
  return OkStatus();
}

void Scheduler::FlushPrefixCache() { prefix_cache_.Clear(pool_); }

Status Scheduler::ReleaseFreeKvMemory() {
  pool_.OrderFreeLowestFirst();
  const std::span<const int32_t> free = pool_.free_pages();
  // Into capacity reserved at construction: an idle engine allocates
  // nothing.
  release_scratch_.assign(free.rbegin(), free.rend());
  return model_.cache().ReleasePages(release_scratch_);
}

SchedulerLoad Scheduler::load() const {
  SchedulerLoad l;
  l.running_samples = running_samples_;
  l.running_requests = static_cast<int64_t>(active_.size());
  l.waiting_requests = static_cast<int64_t>(waiting_.size());
  l.kv_pages_total = pool_.num_pages();
  l.kv_pages_free = pool_.num_free() + prefix_cache_.Evictable(pool_);
  l.cached_pages = prefix_cache_.size();
  l.page_size = config_.page_size;
  return l;
}

}  // namespace rlrt
