#include "sampler/server/sse_stream.h"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "sampler/server/api_json.h"

namespace rlrt {
namespace {

// A TokenEvent that owns its text (the engine's view dies with the call).
struct OwnedEvent {
  TokenEvent event;
  std::string text;
  TokenEvent View() const {
    TokenEvent e = event;
    e.text_delta = text;
    return e;
  }
};

struct StreamState {
  StreamState(StreamFormat format, bool logprobs, const std::string& id,
              const std::string& model, int64_t created)
      : format(format),
        generate(logprobs),
        openai(format == StreamFormat::kChat ? OpenAiApi::kChat
                                             : OpenAiApi::kCompletions,
               logprobs, id, created, model) {}

  nlohmann::json Chunk(const TokenEvent& e) {
    return format == StreamFormat::kGenerate ? generate.Chunk(e)
                                             : openai.Chunk(e);
  }
  nlohmann::json Finish(uint64_t request_id, int32_t sample,
                        FinishReason reason) {
    return format == StreamFormat::kGenerate
               ? generate.FinishChunk(request_id, sample, reason)
               : openai.FinishChunk(sample, reason);
  }

  const StreamFormat format;
  GenerateStream generate;
  OpenAiStream openai;
  std::set<int32_t> finished;  // Samples whose last event was streamed.

  std::mutex mu;
  std::condition_variable cv;
  std::deque<OwnedEvent> events;  // Guarded by mu.
  std::optional<RequestHandle> handle;
};

}  // namespace

void StartStream(SamplerEngine& engine, GenerateRequest request,
                 StreamFormat format, bool logprobs, const std::string& id,
                 const std::string& model, int64_t created_unix_seconds,
                 ServerMetrics& metrics, httplib::Response& res) {
  auto state = std::make_shared<StreamState>(format, logprobs, id, model,
                                             created_unix_seconds);
  if (logprobs) request.return_logprobs = true;
  request.on_token = [state](const TokenEvent& e) {
    std::lock_guard<std::mutex> lock(state->mu);
    state->events.push_back({e, std::string(e.text_delta)});
    state->cv.notify_one();
  };
  StatusOr<RequestHandle> handle = engine.Submit(std::move(request));
  if (!handle.ok()) {
    res.status = HttpStatusFor(handle.status());
    res.set_content(JsonText(ErrorBody(handle.status())), "application/json");
    return;
  }
  state->handle = *handle;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [state, &metrics](size_t, httplib::DataSink& sink) {
        auto send = [&sink](const std::string& text) {
          return sink.write(text.data(), text.size());
        };
        while (true) {
          std::deque<OwnedEvent> batch;
          bool done = false;
          {
            std::unique_lock<std::mutex> lock(state->mu);
            state->cv.wait_for(lock, std::chrono::milliseconds(20),
                               [&] { return !state->events.empty(); });
            // Every event is queued before the request completes, so once
            // it is done this drain takes the last of them.
            done = state->handle->done();
            batch.swap(state->events);
          }
          for (const OwnedEvent& e : batch) {
            if (e.event.finish_reason != FinishReason::kNone)
              state->finished.insert(e.event.sample_index);
            if (!send(SseEvent(state->Chunk(e.View())))) return false;
          }
          if (!sink.is_writable()) return false;
          if (!done) continue;
          StatusOr<GenerateResult> result = state->handle->Wait();
          if (result.ok()) {
            metrics.RecordGeneration(
                result->prompt_tokens, result->completion_tokens,
                result->e2e_seconds, result->first_token_seconds);
            for (size_t i = 0; i < result->samples.size(); ++i) {
              const int32_t sample = static_cast<int32_t>(i);
              if (state->finished.count(sample)) continue;
              if (!send(SseEvent(state->Finish(
                      result->id, sample, result->samples[i].finish_reason))))
                return false;
            }
          } else if (!send(SseEvent(ErrorBody(result.status())))) {
            return false;
          }
          if (!send(std::string(kSseDone))) return false;
          sink.done();
          return true;
        }
      },
      // Called with false when the client went away before the end.
      [state, &engine, &metrics](bool success) {
        if (success || state->handle->done()) return;
        metrics.RecordDisconnect();
        engine.Abort(state->handle->id());
      });
}

}  // namespace rlrt
