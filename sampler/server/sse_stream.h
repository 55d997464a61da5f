// Streaming responses (server-sent events): the engine's per-token
// callback, which runs on the scheduler thread and must not block, queues
// copies of the events; the HTTP worker serving the response drains the
// queue into JSON chunks. A client that goes away mid-stream aborts its
// request, so its KV pages are freed at the next step.
#ifndef RLRT_SAMPLER_SERVER_SSE_STREAM_H_
#define RLRT_SAMPLER_SERVER_SSE_STREAM_H_

#include <cstdint>
#include <string>

#include "sampler/engine.h"
#include "sampler/server/server_metrics.h"

namespace httplib {
struct Response;
}

namespace rlrt {

enum class StreamFormat { kGenerate, kCompletions, kChat };

// Submits `request` and makes `res` stream it. A request the engine
// refuses is answered at once with the error.
void StartStream(SamplerEngine& engine, GenerateRequest request,
                 StreamFormat format, bool logprobs, const std::string& id,
                 const std::string& model, int64_t created_unix_seconds,
                 ServerMetrics& metrics, httplib::Response& res);

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SERVER_SSE_STREAM_H_
