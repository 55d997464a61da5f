#include "sampler/server/rollout_server.h"

#include <httplib.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/json_limits.h"
#include "models/page_arena.h"
#include "sampler/server/api_json.h"
#include "sampler/server/http_reply.h"
#include "sampler/server/sse_stream.h"

namespace rlrt {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A refusal decided on the request's head or body framing.
void SendRefusal(httplib::Response& res, int http, const std::string& message) {
  SendJson(res, {{"error", {{"message", message}, {"code", http}}}}, http);
}

std::optional<uint64_t> ParseU64(const std::string& text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

// Compares every byte whatever the first difference, so the time taken
// says nothing about how much of a guessed token was right.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::string& longer = a.size() >= b.size() ? a : b;
  for (size_t i = 0; i < longer.size(); ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0;
    const unsigned char y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

RolloutServer::RolloutServer(SamplerEngine* engine, Mesh* staging_mesh,
                             const RolloutServerOptions& options)
    : engine_(engine),
      options_(options),
      screen_{options.host, options.allowed_hosts, options.allowed_origins},
      reloader_(engine, staging_mesh),
      stream_receiver_(engine, staging_mesh,
                       {.idle_timeout = std::chrono::milliseconds(
                            options.update_stream_idle_timeout_ms)}),
      http_(std::make_unique<httplib::Server>()) {}

RolloutServer::~RolloutServer() { Stop(); }

StatusOr<std::unique_ptr<RolloutServer>> RolloutServer::Create(
    SamplerEngine* engine, Mesh* staging_mesh,
    const RolloutServerOptions& options) {
  if (engine == nullptr) return InvalidArgumentError("no engine");
  if (options.port < 0 || options.port > 65535)
    return InvalidArgumentError("port must be in [0, 65535]");
  if (options.http_threads < 1 || options.reserved_threads < 1)
    return InvalidArgumentError(
        "http_threads and reserved_threads must be >= 1");
  if (options.head_timeout_ms < 1 || options.body_timeout_ms < 1 ||
      options.update_stream_idle_timeout_ms < 1 ||
      !(options.min_update_bytes_per_second > 0))
    return InvalidArgumentError("timeouts and rates must be positive");
  if (options.model_name.empty())
    return InvalidArgumentError("the served model needs a name");
  std::unique_ptr<RolloutServer> server(
      new RolloutServer(engine, staging_mesh, options));
  server->admin_enabled_ =
      !options.admin_token.empty() || IsLoopbackHost(options.host);
  server->Route();
  return server;
}

Status RolloutServer::Start() {
  // The library listens on a Unix socket in a directory only this user can
  // enter; clients reach it through the gate alone.
  char dir[] = "/tmp/rlrt-server-XXXXXX";
  if (::mkdtemp(dir) == nullptr)
    return UnavailableError("cannot create a private socket directory");
  socket_dir_ = dir;
  const std::string socket_path = socket_dir_ + "/http.sock";
  // Debian's httplib listens with a backlog of 5, so a burst of relayed
  // connections would be reset. Keep the listening socket (the callback
  // replaces httplib's defaults) and listen again with the system's
  // maximum once it is bound.
  int listen_fd = -1;
  http_->set_socket_options([&listen_fd](int fd) { listen_fd = fd; });
  http_->set_address_family(AF_UNIX);
  if (!http_->bind_to_port(socket_path, 80)) {
    return UnavailableError("cannot listen on " + socket_path);
  }
  if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
  listener_ = std::thread([this] { http_->listen_after_bind(); });
  // Wait until it accepts, so Stop() right after Start() cannot race the
  // listen loop's start.
  while (!http_->is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));

  GateOptions gate;
  gate.host = options_.host;
  gate.port = options_.port;
  gate.upstream_unix_path = socket_path;
  gate.max_head_bytes = options_.max_head_bytes;
  gate.head_timeout = std::chrono::milliseconds(options_.head_timeout_ms);
  gate.general_slots = options_.http_threads;
  gate.reserved_slots = options_.reserved_threads;
  StatusOr<std::unique_ptr<ConnectionGate>> started =
      ConnectionGate::Start(gate);
  if (!started.ok()) {
    Stop();
    return started.status();
  }
  gate_ = std::move(*started);
  port_ = gate_->port();
  return OkStatus();
}

void RolloutServer::Stop() {
  if (gate_) gate_->StopAccepting();
  if (http_) http_->stop();
  if (listener_.joinable()) listener_.join();
  if (gate_) gate_->Stop();
  reloader_.Wait();
  if (!socket_dir_.empty()) {
    ::unlink((socket_dir_ + "/http.sock").c_str());
    ::rmdir(socket_dir_.c_str());
    socket_dir_.clear();
  }
}

GateStats RolloutServer::gate_stats() const {
  return gate_ ? gate_->stats() : GateStats{};
}

bool RolloutServer::Screen(const httplib::Request& req,
                           httplib::Response& res) {
  auto found = routes_.find({req.method, req.path});
  if (found == routes_.end()) return false;  // The library answers 404.
  const RouteSpec& spec = found->second;
  auto refuse = [&](int http, const std::string& message) {
    SendRefusal(res, http, message);
    metrics_.RecordRequest(spec.endpoint, http);
    return true;
  };
  const std::string host = req.get_header_value("Host");
  if (auto r = ScreenHost(screen_, host))
    return refuse(r->http_status, r->message);
  if (auto r = ScreenOrigin(screen_, req.get_header_value("Origin"), host))
    return refuse(r->http_status, r->message);
  if (spec.admin) {
    if (!admin_enabled_)
      return refuse(403,
                    "admin endpoints are disabled on a non-loopback host "
                    "without --admin_token");
    if (!options_.admin_token.empty() &&
        !ConstantTimeEquals(req.get_header_value("Authorization"),
                            "Bearer " + options_.admin_token))
      return refuse(401, "missing or wrong bearer token");
  }
  if (spec.body == BodyKind::kNone) return false;
  if (auto r =
          ScreenContentType(spec.body, req.get_header_value("Content-Type")))
    return refuse(r->http_status, r->message);
  if (req.has_header("Content-Length")) {
    const std::optional<uint64_t> declared =
        ParseU64(req.get_header_value("Content-Length"));
    if (!declared) return refuse(400, "Content-Length is not a number");
    if (*declared > spec.body_limit)
      return refuse(413, "request body of " + std::to_string(*declared) +
                             " bytes exceeds the limit of " +
                             std::to_string(spec.body_limit));
  }
  return false;
}

bool RolloutServer::ReadBody(const httplib::Request& req,
                             const httplib::ContentReader& reader,
                             const RouteSpec& spec, std::string* body,
                             httplib::Response& res) {
  const std::optional<uint64_t> declared =
      ParseU64(req.get_header_value("Content-Length"));
  // Screen() has held the declared length to the limit.
  if (declared) {
    body->reserve(*declared);
    AdviseHugePages(body->data(), body->capacity());
  }
  double seconds = options_.body_timeout_ms / 1000.0;
  if (spec.body == BodyKind::kProtobuf)
    seconds += static_cast<double>(declared.value_or(spec.body_limit)) /
               options_.min_update_bytes_per_second;
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(seconds));
  enum class Stop { kNo, kTooLarge, kTooSlow } stop = Stop::kNo;
  const bool read = reader([&](const char* data, size_t n) {
    if (n > spec.body_limit - body->size()) {
      stop = Stop::kTooLarge;
      return false;
    }
    if (Clock::now() > deadline) {
      stop = Stop::kTooSlow;
      return false;
    }
    body->append(data, n);
    return true;
  });
  if (read && stop == Stop::kNo) return true;
  body->clear();
  body->shrink_to_fit();  // A refused update's memory goes back now.
  const int http = stop == Stop::kTooLarge  ? 413
                   : stop == Stop::kTooSlow ? 408
                                            : 400;
  const std::string message =
      stop == Stop::kTooLarge ? "request body exceeds the limit of " +
                                    std::to_string(spec.body_limit) + " bytes"
      : stop == Stop::kTooSlow
          ? "request body did not arrive within " +
                std::to_string(static_cast<int64_t>(seconds * 1000)) + " ms"
          : std::string("request body ended early or is malformed");
  SendRefusal(res, http, message);
  return false;
}

StatusOr<GenerateResult> RolloutServer::GenerateWhileConnected(
    const httplib::Request& req, GenerateRequest request) {
  StatusOr<RequestHandle> handle = engine_->Submit(std::move(request));
  if (!handle.ok()) return handle.status();
  const std::optional<uint64_t> connection =
      ParseU64(req.get_header_value(ConnectionGate::kConnectionHeader));
  while (true) {
    if (auto result = handle->WaitFor(std::chrono::milliseconds(50)))
      return *result;
    if (connection && gate_ && !gate_->ClientConnected(*connection)) {
      // Nobody will read the answer: free the KV pages at the next step.
      engine_->Abort(handle->id());
      metrics_.RecordDisconnect();
      return handle->Wait();
    }
  }
}

bool RolloutServer::ServingAllowed(httplib::Response& res) {
  if (options_.reject_during_reload && reloader_.busy()) {
    SendError(res, UnavailableError("weights are being reloaded"));
    res.set_header("Retry-After", "1");
    return false;
  }
  return true;
}

void RolloutServer::AddPost(const std::string& path, RouteSpec spec,
                            PostHandler handler) {
  routes_[{"POST", path}] = spec;
  // With a body, the handler runs before it is read (Screen() has passed)
  // and reads it itself; without one, the library calls the plain handler.
  http_->Post(path, [this, spec, handler](
                        const httplib::Request& req, httplib::Response& res,
                        const httplib::ContentReader& reader) {
    std::string body;
    if (ReadBody(req, reader, spec, &body, res)) handler(req, body, res);
    metrics_.RecordRequest(spec.endpoint, res.status);
  });
  http_->Post(path, [this, spec, handler](const httplib::Request& req,
                                          httplib::Response& res) {
    handler(req, std::string(), res);
    metrics_.RecordRequest(spec.endpoint, res.status);
  });
}

void RolloutServer::AddGet(const std::string& path, RouteSpec spec,
                           GetHandler handler) {
  routes_[{"GET", path}] = spec;
  http_->Get(path, [this, spec, handler](const httplib::Request&,
                                         httplib::Response& res) {
    handler(res);
    metrics_.RecordRequest(spec.endpoint, res.status);
  });
}

void RolloutServer::Route() {
  http_->set_payload_max_length(
      std::max(options_.max_json_body_bytes, options_.max_update_body_bytes));
  // One request per connection: a refused body is never read, so the
  // connection cannot carry another request after it.
  http_->set_keep_alive_max_count(1);
  const int threads = options_.http_threads + options_.reserved_threads;
  http_->new_task_queue = [threads] {
    return new httplib::ThreadPool(threads);
  };
  // Nothing a handler does should throw; if something does, the client gets
  // a 500 and the server goes on.
  http_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        SendError(res, InternalError("unexpected error"));
      });
  http_->set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        return Screen(req, res) ? httplib::Server::HandlerResponse::Handled
                                : httplib::Server::HandlerResponse::Unhandled;
      });

  const size_t json_limit = options_.max_json_body_bytes;
  AddPost("/generate",
          {Endpoint::kGenerate, false, BodyKind::kJson, json_limit},
          [this](auto& q, Body b, auto& s) { HandleGenerate(q, b, s); });
  AddPost("/v1/completions",
          {Endpoint::kCompletions, false, BodyKind::kJson, json_limit},
          [this](auto& q, Body b, auto& s) { HandleOpenAi(q, b, s, false); });
  AddPost("/v1/chat/completions",
          {Endpoint::kChatCompletions, false, BodyKind::kJson, json_limit},
          [this](auto& q, Body b, auto& s) { HandleOpenAi(q, b, s, true); });
  const RouteSpec get_spec{Endpoint::kOther, false, BodyKind::kNone, 0};
  AddGet("/v1/models", get_spec,
         [this](auto& s) { SendJson(s, ModelsJson()); });
  AddGet("/health", get_spec, [this](auto& s) {
    SendJson(s, {{"status", "ok"},
                 {"weight_version", engine_->Stats().weight_version}});
  });
  AddGet("/get_load", get_spec, [this](auto& s) { HandleLoad(s); });
  AddGet("/metrics", get_spec, [this](auto& s) {
    s.set_content(metrics_.Prometheus(engine_->Stats(), reloader_.status(),
                                      stream_receiver_.status()),
                  "text/plain; version=0.0.4");
  });

  const RouteSpec admin_get{Endpoint::kAdmin, true, BodyKind::kNone, 0};
  const RouteSpec admin_json{Endpoint::kAdmin, true, BodyKind::kJson,
                             json_limit};
  AddPost("/v1/load_lora_adapter", admin_json,
          [this](auto&, Body b, auto& s) { HandleLoadLora(b, s); });
  AddPost("/v1/unload_lora_adapter", admin_json,
          [this](auto&, Body b, auto& s) { HandleUnloadLora(b, s); });
  AddPost("/admin/reload_weights", admin_json,
          [this](auto&, Body b, auto& s) { HandleReloadWeights(b, s); });
  AddGet("/admin/reload_status", admin_get,
         [this](auto& s) { HandleReloadStatus(s); });
  AddGet("/admin/weights_checksum", admin_get,
         [this](auto& s) { HandleChecksum(s); });
  AddPost("/admin/perturb_weights", admin_json,
          [this](auto&, Body b, auto& s) { HandlePerturb(b, s); });
  AddPost("/admin/update_params",
          {Endpoint::kAdmin, true, BodyKind::kProtobuf,
           options_.max_update_body_bytes},
          [this](auto&, Body b, auto& s) { HandleUpdateParams(b, s); });
  const RouteSpec stream_small{Endpoint::kAdmin, true, BodyKind::kProtobuf,
                               json_limit};
  AddPost("/admin/update_stream/begin", stream_small,
          [this](auto&, Body b, auto& s) { HandleStreamBegin(b, s); });
  AddPost("/admin/update_stream/chunk",
          {Endpoint::kAdmin, true, BodyKind::kProtobuf,
           options_.max_update_body_bytes},
          [this](auto&, Body b, auto& s) { HandleStreamChunk(b, s); });
  AddPost("/admin/update_stream/commit", stream_small,
          [this](auto&, Body b, auto& s) { HandleStreamCommit(b, s); });
  AddPost("/admin/update_stream/abort", admin_json,
          [this](auto&, Body b, auto& s) { HandleStreamAbort(b, s); });
  AddGet("/admin/update_stream/status", admin_get,
         [this](auto& s) { HandleStreamStatus(s); });
}

void RolloutServer::HandleLoad(httplib::Response& res) {
  const EngineStats stats = engine_->Stats();
  const SchedulerLoad& load = stats.load;
  SendJson(res, {{"running_requests", load.running_requests},
                 {"running_samples", load.running_samples},
                 {"waiting_requests", load.waiting_requests},
                 {"kv_tokens_total", load.kv_pages_total * load.page_size},
                 {"kv_tokens_free", load.kv_pages_free * load.page_size},
                 {"kv_tokens_used",
                  (load.kv_pages_total - load.kv_pages_free) * load.page_size},
                 {"weight_version", stats.weight_version},
                 {"reloading", reloader_.busy()}});
}

void RolloutServer::HandleGenerate(const httplib::Request& req, Body text,
                                   httplib::Response& res) {
  if (!ServingAllowed(res)) return;
  std::optional<json> body = ParseBody(text, res);
  if (!body) return;
  StatusOr<ParsedGenerate> parsed = ParseGenerateRequest(*body);
  if (!parsed.ok()) return SendError(res, parsed.status());
  if (parsed->stream) {
    const bool logprobs = parsed->request.return_logprobs;
    return StartStream(*engine_, std::move(parsed->request),
                       StreamFormat::kGenerate, logprobs, "", "", 0, metrics_,
                       res);
  }
  const bool logprobs = parsed->request.return_logprobs;
  StatusOr<GenerateResult> result =
      GenerateWhileConnected(req, std::move(parsed->request));
  if (!result.ok()) return SendError(res, result.status());
  metrics_.RecordGeneration(result->prompt_tokens, result->completion_tokens,
                            result->e2e_seconds, result->first_token_seconds);
  SendJson(res, GenerateResponse(*result, logprobs));
}

void RolloutServer::HandleOpenAi(const httplib::Request& req, Body text,
                                 httplib::Response& res, bool chat) {
  if (!ServingAllowed(res)) return;
  std::optional<json> body = ParseBody(text, res);
  if (!body) return;
  StatusOr<OpenAiRequest> parsed = chat ? ParseChatCompletionsRequest(*body)
                                        : ParseCompletionsRequest(*body);
  if (!parsed.ok()) return SendError(res, parsed.status());
  // Only a served name is echoed back (a long "model" would otherwise be
  // repeated in every streamed chunk).
  StatusOr<std::string> adapter = AdapterForModel(parsed->model);
  if (!adapter.ok()) return SendError(res, adapter.status());
  parsed->request.lora_name = *adapter;
  const std::string id = (chat ? "chatcmpl-" : "cmpl-") +
                         std::to_string(next_completion_id_.fetch_add(1));
  const std::string& model = adapter->empty() ? options_.model_name : *adapter;
  const int64_t created =
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count();
  if (parsed->stream) {
    return StartStream(*engine_, std::move(parsed->request),
                       chat ? StreamFormat::kChat : StreamFormat::kCompletions,
                       parsed->logprobs, id, model, created, metrics_, res);
  }
  GenerateRequest request = parsed->request;
  StatusOr<GenerateResult> result =
      GenerateWhileConnected(req, std::move(request));
  if (!result.ok()) return SendError(res, result.status());
  metrics_.RecordGeneration(result->prompt_tokens, result->completion_tokens,
                            result->e2e_seconds, result->first_token_seconds);
  SendJson(res,
           chat ? ChatCompletionsResponse(*result, *parsed, id, created, model)
                : CompletionsResponse(*result, *parsed, id, created, model));
}

}  // namespace rlrt
