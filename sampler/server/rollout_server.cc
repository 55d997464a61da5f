#include "sampler/server/rollout_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/format.h"
#include "base/json_limits.h"
#include "sampler/server/api_json.h"
#include "sampler/server/sse_stream.h"

namespace rlrt {
namespace {

using nlohmann::json;

void SendJson(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
}

void SendError(httplib::Response& res, const Status& status) {
  SendJson(res, ErrorBody(status), HttpStatusFor(status));
}

// Parses a JSON object body; answers 400 itself when it is not one.
std::optional<json> ParseBody(const httplib::Request& req,
                              httplib::Response& res) {
  if (Status depth = CheckJsonDepth(req.body, "request body"); !depth.ok()) {
    SendError(res, depth);
    return std::nullopt;
  }
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    SendError(res, InvalidArgumentError("the request body is not valid JSON"));
    return std::nullopt;
  }
  if (!body.is_object()) {
    SendError(res, InvalidArgumentError("the request body must be an object"));
    return std::nullopt;
  }
  return body;
}

json ChecksumJson(const LeafChecksums& c) {
  return {{"float64_sum", c.float64_sum},
          {"content_hash", HexU64(c.content_hash)}};
}

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

RolloutServer::RolloutServer(SamplerEngine* engine, Mesh* staging_mesh,
                             const RolloutServerOptions& options)
    : engine_(engine),
      options_(options),
      reloader_(engine, staging_mesh),
      http_(std::make_unique<httplib::Server>()) {}

RolloutServer::~RolloutServer() { Stop(); }

StatusOr<std::unique_ptr<RolloutServer>> RolloutServer::Create(
    SamplerEngine* engine, Mesh* staging_mesh,
    const RolloutServerOptions& options) {
  if (engine == nullptr) return InvalidArgumentError("no engine");
  if (options.port < 0 || options.port > 65535)
    return InvalidArgumentError("port must be in [0, 65535]");
  if (options.http_threads < 1)
    return InvalidArgumentError("http_threads must be >= 1");
  std::unique_ptr<RolloutServer> server(
      new RolloutServer(engine, staging_mesh, options));
  server->admin_enabled_ =
      !options.admin_token.empty() || IsLoopbackHost(options.host);
  server->Route();
  return server;
}

Status RolloutServer::Start() {
  // Debian's httplib listens with a backlog of 5, so a burst of clients
  // gets connections reset. Keep the listening socket (the callback
  // replaces httplib's defaults, so SO_REUSEADDR is set again here) and
  // listen again with the system's maximum once it is bound.
  int listen_fd = -1;
  http_->set_socket_options([&listen_fd](int fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_fd = fd;
  });
  const int port =
      options_.port == 0
          ? http_->bind_to_any_port(options_.host)
          : (http_->bind_to_port(options_.host, options_.port) ? options_.port
                                                               : -1);
  if (port < 0) {
    return UnavailableError("cannot listen on " + options_.host + ":" +
                            std::to_string(options_.port));
  }
  port_ = port;
  if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
  listener_ = std::thread([this] { http_->listen_after_bind(); });
  // Bound already, so clients can connect; wait until it also accepts, so
  // Stop() right after Start() cannot race the listen loop's start.
  while (!http_->is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return OkStatus();
}

void RolloutServer::Stop() {
  if (http_) http_->stop();
  if (listener_.joinable()) listener_.join();
  reloader_.Wait();
}

bool RolloutServer::AdminAllowed(const httplib::Request& req,
                                 httplib::Response& res) {
  if (!admin_enabled_) {
    SendJson(res,
             {{"error",
               {{"message",
                 "admin endpoints are disabled on a non-loopback host "
                 "without --admin_token"},
                {"code", 403}}}},
             403);
    return false;
  }
  if (options_.admin_token.empty()) return true;
  if (req.get_header_value("Authorization") !=
      "Bearer " + options_.admin_token) {
    SendJson(res,
             {{"error",
               {{"message", "missing or wrong bearer token"}, {"code", 401}}}},
             401);
    return false;
  }
  return true;
}

bool RolloutServer::ServingAllowed(httplib::Response& res) {
  if (options_.reject_during_reload && reloader_.busy()) {
    SendError(res, UnavailableError("weights are being reloaded"));
    res.set_header("Retry-After", "1");
    return false;
  }
  return true;
}

bool RolloutServer::BodyWithinLimit(const httplib::Request& req,
                                    httplib::Response& res, size_t limit) {
  if (req.body.size() <= limit) return true;
  SendJson(res,
           {{"error",
             {{"message", "request body of " + std::to_string(req.body.size()) +
                              " bytes exceeds the limit of " +
                              std::to_string(limit)},
              {"code", 413}}}},
           413);
  return false;
}

void RolloutServer::Route() {
  http_->set_payload_max_length(
      std::max(options_.max_json_body_bytes, options_.max_update_body_bytes));
  const int threads = options_.http_threads;
  http_->new_task_queue = [threads] {
    return new httplib::ThreadPool(threads);
  };
  // Nothing a handler does should throw; if something does, the client gets
  // a 500 and the server goes on.
  http_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        SendError(res, InternalError("unexpected error"));
      });

  auto counted = [this](Endpoint endpoint, auto handler) {
    return [this, endpoint, handler](const httplib::Request& req,
                                     httplib::Response& res) {
      handler(req, res);
      metrics_.RecordRequest(endpoint, res.status);
    };
  };
  http_->Post("/generate",
              counted(Endpoint::kGenerate,
                      [this](auto& q, auto& s) { HandleGenerate(q, s); }));
  http_->Post("/v1/completions",
              counted(Endpoint::kCompletions,
                      [this](auto& q, auto& s) { HandleOpenAi(q, s, false); }));
  http_->Post("/v1/chat/completions",
              counted(Endpoint::kChatCompletions,
                      [this](auto& q, auto& s) { HandleOpenAi(q, s, true); }));
  http_->Get(
      "/v1/models", counted(Endpoint::kOther, [this](auto&, auto& s) {
        json model = {{"id", options_.model_name},
                      {"object", "model"},
                      {"owned_by", "rlrt"},
                      {"max_model_len", engine_->context_length()},
                      // Extensions a trainer needs to match the sampler:
                      // the ids it can draw, and the version in force.
                      {"vocab_size", engine_->vocab_size()},
                      {"weight_version", engine_->Stats().weight_version}};
        SendJson(s, {{"object", "list"}, {"data", json::array({model})}});
      }));
  http_->Get("/health", counted(Endpoint::kOther, [this](auto&, auto& s) {
               SendJson(s,
                        {{"status", "ok"},
                         {"weight_version", engine_->Stats().weight_version}});
             }));
  http_->Get("/get_load", counted(Endpoint::kOther,
                                  [this](auto&, auto& s) { HandleLoad(s); }));
  http_->Get("/metrics", counted(Endpoint::kOther, [this](auto&, auto& s) {
               s.set_content(
                   metrics_.Prometheus(engine_->Stats(), reloader_.status()),
                   "text/plain; version=0.0.4");
             }));

  auto admin = [this, counted](auto handler) {
    return counted(Endpoint::kAdmin, [this, handler](const httplib::Request& q,
                                                     httplib::Response& s) {
      if (AdminAllowed(q, s)) handler(q, s);
    });
  };
  http_->Post("/admin/reload_weights",
              admin([this](auto& q, auto& s) { HandleReloadWeights(q, s); }));
  http_->Get("/admin/reload_status",
             admin([this](auto&, auto& s) { HandleReloadStatus(s); }));
  http_->Get("/admin/weights_checksum",
             admin([this](auto&, auto& s) { HandleChecksum(s); }));
  http_->Post("/admin/perturb_weights",
              admin([this](auto& q, auto& s) { HandlePerturb(q, s); }));
  http_->Post("/admin/update_params",
              admin([this](auto& q, auto& s) { HandleUpdateParams(q, s); }));
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

void RolloutServer::HandleGenerate(const httplib::Request& req,
                                   httplib::Response& res) {
  if (!BodyWithinLimit(req, res, options_.max_json_body_bytes) ||
      !ServingAllowed(res))
    return;
  std::optional<json> body = ParseBody(req, res);
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
      engine_->Generate(std::move(parsed->request));
  if (!result.ok()) return SendError(res, result.status());
  metrics_.RecordGeneration(result->prompt_tokens, result->completion_tokens,
                            result->e2e_seconds, result->first_token_seconds);
  SendJson(res, GenerateResponse(*result, logprobs));
}

void RolloutServer::HandleOpenAi(const httplib::Request& req,
                                 httplib::Response& res, bool chat) {
  if (!BodyWithinLimit(req, res, options_.max_json_body_bytes) ||
      !ServingAllowed(res))
    return;
  std::optional<json> body = ParseBody(req, res);
  if (!body) return;
  StatusOr<OpenAiRequest> parsed = chat ? ParseChatCompletionsRequest(*body)
                                        : ParseCompletionsRequest(*body);
  if (!parsed.ok()) return SendError(res, parsed.status());
  const std::string id = (chat ? "chatcmpl-" : "cmpl-") +
                         std::to_string(next_completion_id_.fetch_add(1));
  const std::string model =
      parsed->model.empty() ? options_.model_name : parsed->model;
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
  StatusOr<GenerateResult> result = engine_->Generate(std::move(request));
  if (!result.ok()) return SendError(res, result.status());
  metrics_.RecordGeneration(result->prompt_tokens, result->completion_tokens,
                            result->e2e_seconds, result->first_token_seconds);
  SendJson(res,
           chat ? ChatCompletionsResponse(*result, *parsed, id, created, model)
                : CompletionsResponse(*result, *parsed, id, created, model));
}

void RolloutServer::HandleReloadWeights(const httplib::Request& req,
                                        httplib::Response& res) {
  if (!BodyWithinLimit(req, res, options_.max_json_body_bytes)) return;
  std::optional<json> body = ParseBody(req, res);
  if (!body) return;
  const json& b = *body;
  if (!b.contains("model_path") || !b["model_path"].is_string())
    return SendError(res,
                     InvalidArgumentError("\"model_path\" (string) is needed"));
  std::string load_format = "safetensors";
  if (b.contains("load_format")) {
    if (!b["load_format"].is_string())
      return SendError(
          res, InvalidArgumentError("\"load_format\" must be a string"));
    load_format = b["load_format"].get<std::string>();
  }
  uint64_t seed = 0;
  if (b.contains("seed")) {
    if (!b["seed"].is_number_unsigned())
      return SendError(
          res, InvalidArgumentError("\"seed\" must be a non-negative integer"));
    seed = b["seed"].get<uint64_t>();
  }
  std::optional<uint64_t> version;
  if (b.contains("weight_version")) {
    if (!b["weight_version"].is_number_unsigned())
      return SendError(
          res, InvalidArgumentError("\"weight_version\" must be a non-negative "
                                    "integer"));
    version = b["weight_version"].get<uint64_t>();
    const uint64_t in_force = engine_->Stats().weight_version;
    if (*version < in_force)
      return SendJson(res,
                      ErrorBody(FailedPreconditionError(
                          "weight_version " + std::to_string(*version) +
                          " is older than the version in force (" +
                          std::to_string(in_force) + ")")),
                      409);
  }
  Status started = reloader_.Start(b["model_path"].get<std::string>(),
                                   load_format, seed, version);
  if (!started.ok()) {
    return SendJson(res, ErrorBody(started),
                    started.code() == StatusCode::kFailedPrecondition
                        ? 409
                        : HttpStatusFor(started));
  }
  SendJson(res,
           {{"status", "loading"},
            {"model_path", b["model_path"]},
            {"load_format", load_format}},
           202);
}

void RolloutServer::HandleReloadStatus(httplib::Response& res) {
  const ReloadStatus s = reloader_.status();
  json body = {{"state", ReloadStateName(s.state)},
               {"model_path", s.model_path},
               {"load_format", s.load_format},
               {"version", s.version},
               {"weight_version", engine_->Stats().weight_version},
               {"load_seconds", s.load_seconds},
               {"apply_seconds", s.apply_seconds},
               {"reloads_done", s.reloads_done},
               {"reloads_failed", s.reloads_failed}};
  if (!s.error.empty()) body["error"] = s.error;
  SendJson(res, body);
}

void RolloutServer::HandleChecksum(httplib::Response& res) {
  StatusOr<LeafChecksums> sums = engine_->WeightsChecksum();
  if (!sums.ok()) return SendError(res, sums.status());
  json body = ChecksumJson(*sums);
  body["weight_version"] = engine_->Stats().weight_version;
  SendJson(res, body);
}

void RolloutServer::HandlePerturb(const httplib::Request& req,
                                  httplib::Response& res) {
  if (!BodyWithinLimit(req, res, options_.max_json_body_bytes)) return;
  std::optional<json> body = ParseBody(req, res);
  if (!body) return;
  const json& b = *body;
  uint64_t seed = 0;
  double scale = 1e-3;
  int64_t num_leaves = 1 << 30;
  if (b.contains("seed")) {
    if (!b["seed"].is_number_unsigned())
      return SendError(
          res, InvalidArgumentError("\"seed\" must be a non-negative integer"));
    seed = b["seed"].get<uint64_t>();
  }
  if (b.contains("scale")) {
    if (!b["scale"].is_number() || !(b["scale"].get<double>() >= 0))
      return SendError(res,
                       InvalidArgumentError("\"scale\" must be a number >= 0"));
    scale = b["scale"].get<double>();
  }
  if (b.contains("num_leaves")) {
    if (!b["num_leaves"].is_number_unsigned())
      return SendError(
          res, InvalidArgumentError("\"num_leaves\" must be a non-negative "
                                    "integer"));
    num_leaves = b["num_leaves"].get<int64_t>();
  }
  StatusOr<PerturbReport> report =
      engine_->PerturbWeights(seed, scale, num_leaves);
  if (!report.ok()) return SendError(res, report.status());
  SendJson(res, {{"before", ChecksumJson(report->before)},
                 {"after", ChecksumJson(report->after)},
                 {"checksum_delta",
                  report->after.float64_sum - report->before.float64_sum},
                 {"weight_version", engine_->Stats().weight_version}});
}

void RolloutServer::HandleUpdateParams(const httplib::Request& req,
                                       httplib::Response& res) {
  if (!BodyWithinLimit(req, res, options_.max_update_body_bytes)) return;
  // The engine parses into one reused message; it serialises callers.
  StatusOr<ApplyReport> applied = engine_->UpdateParamsSerialized(req.body);
  if (!applied.ok()) {
    json body = ErrorBody(applied.status());
    body["ok"] = false;
    body["version"] = engine_->Stats().weight_version;
    // A payload that does not match its own content hash is the request's
    // corruption, not the server's: 400, like any other malformed update.
    const StatusCode code = applied.status().code();
    return SendJson(res, body,
                    code == StatusCode::kFailedPrecondition ? 409
                    : code == StatusCode::kDataLoss
                        ? 400
                        : HttpStatusFor(applied.status()));
  }
  SendJson(res, {{"ok", true},
                 {"version", applied->version},
                 {"bytes_copied", applied->bytes_copied},
                 {"elapsed_us", applied->elapsed_us},
                 {"stall_ms", engine_->Stats().last_update_stall_ms}});
}

}  // namespace rlrt
