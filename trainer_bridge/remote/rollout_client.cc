#include "trainer_bridge/remote/rollout_client.h"

#include <glog/logging.h>
#include <httplib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "base/json_limits.h"
#include "base/timing.h"
#include "sampler/server/api_json.h"
#include "trainer_bridge/remote/generate_wire.h"
#include "trainer_bridge/remote/http_timeouts.h"

namespace rlrt {
namespace {

using json = nlohmann::json;
constexpr std::chrono::milliseconds kLoadRefreshPeriod{50};
constexpr double kLoadPollTimeoutSeconds = 2;
constexpr std::chrono::milliseconds kReloadPollPeriod{20};
constexpr std::chrono::seconds kDownPeriod{1};

// ---- URLs ------------------------------------------------------------------

struct ParsedUrl {
  std::string normalized;
  std::string host;
  int port = 0;
};

StatusOr<ParsedUrl> ParseUrl(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError("rollout server URL \"" + url + "\" " + why +
                                " (want http://host:port)");
  };
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) return bad("is not http://");
  std::string rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) return bad("has a path");
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return bad("has no port");
  std::string host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);  // [::1]
  if (host.empty()) return bad("has no host");
  int number = 0;
  const auto [end, error] =
      std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || error != std::errc() ||
      end != port.data() + port.size() || number < 1 || number > 65535)
    return bad("has a bad port");
  return ParsedUrl{std::string(kScheme) + rest, std::move(host), number};
}

// ---- HTTP errors -----------------------------------------------------------

std::string TransportError(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
      return "cannot connect";
    case httplib::Error::Read:
      return "no reply (the connection failed or the read timed out)";
    case httplib::Error::Write:
      return "sending the request failed";
    case httplib::Error::Canceled:
      return "cancelled";
    default:
      return "HTTP error: " + httplib::to_string(error);
  }
}

// The inverse of HttpStatusFor, as far as it goes.
StatusCode CodeForHttp(int http) {
  switch (http) {
    case 404:
      return StatusCode::kNotFound;
    case 401:
    case 403:
    case 409:
      return StatusCode::kFailedPrecondition;
    case 429:
      return StatusCode::kResourceExhausted;
    case 501:
      return StatusCode::kUnimplemented;
    case 503:
      return StatusCode::kUnavailable;
    default:
      return http >= 500 ? StatusCode::kInternal : StatusCode::kInvalidArgument;
  }
}

// "<where>: HTTP <code>: <the server's error message>".
Status HttpError(const std::string& where, int http, const json& reply,
                 const std::string& raw) {
  std::string message = raw.substr(0, 300);
  if (reply.is_object() && reply.contains("error")) {
    const json& error = reply["error"];
    if (error.is_object() && error.contains("message") &&
        error["message"].is_string())
      message = error["message"].get<std::string>();
  }
  return Status(CodeForHttp(http),
                where + ": HTTP " + std::to_string(http) + ": " + message);
}

// A reply nested deeper than kMaxJsonDepth is treated as unreadable.
json ParseJson(const std::string& text) {
  if (!CheckJsonDepth(text, "reply").ok()) return json();
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return value.is_discarded() ? json() : value;
}

}  // namespace

// ---- Construction ----------------------------------------------------------

RolloutClient::RolloutClient(const RolloutClientOptions& options,
                             std::vector<std::string> urls,
                             std::vector<Endpoint> endpoints)
    : options_(options),
      urls_(std::move(urls)),
      endpoints_(std::move(endpoints)),
      loads_(urls_.size()) {}

StatusOr<std::unique_ptr<RolloutClient>> RolloutClient::Create(
    const RolloutClientOptions& options) {
  if (options.urls.empty())
    return InvalidArgumentError("no rollout server URLs");
  if (options.max_attempts < 1)
    return InvalidArgumentError("max_attempts must be >= 1");
  if (options.worker_threads < 1)
    return InvalidArgumentError("worker_threads must be >= 1");
  if (!(options.request_timeout_seconds > 0) ||
      !(options.connect_timeout_seconds > 0))
    return InvalidArgumentError("timeouts must be > 0");
  std::vector<std::string> urls;
  std::vector<Endpoint> endpoints;
  for (const std::string& url : options.urls) {
    ASSIGN_OR_RETURN(ParsedUrl parsed, ParseUrl(url));
    urls.push_back(std::move(parsed.normalized));
    endpoints.push_back({std::move(parsed.host), parsed.port});
  }
  std::unique_ptr<RolloutClient> client(
      new RolloutClient(options, std::move(urls), std::move(endpoints)));
  if (options.check_health) {
    std::string failed;
    for (const ServerResult& r : client->FanOut([&](size_t i) {
           return client->CallJson(i, Method::kGet, "/health");
         })) {
      if (!r.status.ok())
        failed += (failed.empty() ? "" : "; ") + r.status.message();
    }
    if (!failed.empty())
      return UnavailableError("rollout servers failed /health: " + failed);
  }
  for (int i = 0; i < options.worker_threads; ++i)
    client->workers_.emplace_back([c = client.get()] { c->WorkerLoop(); });
  client->catch_up_thread_ =
      std::thread([c = client.get()] { c->CatchUpLoop(); });
  return client;
}

RolloutClient::~RolloutClient() {
  std::deque<Job> queued;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
    queued.swap(queue_);
  }
  queue_cv_.notify_all();
  catch_up_cv_.notify_all();
  for (Job& job : queued)
    job.done->Finish(AbortedError("the rollout client was destroyed"));
  {
    std::lock_guard<std::mutex> lock(active_mu_);
    cancelled_ = true;
    for (httplib::Client* client : active_) client->stop();
  }
  for (std::thread& worker : workers_) worker.join();
  if (catch_up_thread_.joinable()) catch_up_thread_.join();
}

// ---- Generation ------------------------------------------------------------

StatusOr<RequestHandle> RolloutClient::Submit(const GenerateRequest& request) {
  RETURN_IF_ERROR(ValidateForGenerate(request));
  Job job{next_id_.fetch_add(1), request,
          std::make_shared<RequestCompletion>()};
  RequestHandle handle(job.id, job.done);
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (stopping_) return AbortedError("the rollout client is shutting down");
    queue_.push_back(std::move(job));
  }
  queue_cv_.notify_one();
  return handle;
}

StatusOr<GenerateResult> RolloutClient::Generate(
    const GenerateRequest& request) {
  ASSIGN_OR_RETURN(RequestHandle handle, Submit(request));
  return handle.Wait();
}

void RolloutClient::WorkerLoop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job.done->Finish(RunGenerate(job.id, job.request));
  }
}

StatusOr<GenerateResult> RolloutClient::RunGenerate(
    uint64_t id, const GenerateRequest& request) {
  const std::string body = JsonText(GenerateBody(request));
  std::vector<bool> tried(urls_.size(), false);
  Status last;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    WaitForAServerInStep();
    const auto [server, required_version] = PickServer(tried);
    // A server tried already gets a moment to recover.
    if (tried[server])
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
    tried[server] = true;
    HttpReply r = Call(server, Method::kPost, "/generate", body,
                       "application/json", options_.request_timeout_seconds);
    FinishAttempt(server, r.status == 0 || r.status >= 500);
    const std::string where = urls_[server] + "/generate";
    json reply = ParseJson(r.body);
    if (r.status == 0) {
      last = r.transport;
      if (last.code() == StatusCode::kAborted) return last;
      // It may come back restarted, with its initial weights.
      MarkBehind(server);
    } else if (r.status >= 500) {
      last = HttpError(where, r.status, reply, r.body);
    } else if (r.status != 200) {
      return HttpError(where, r.status, reply, r.body);
    } else {
      StatusOr<GenerateResult> result = ReadGenerateReply(reply, request);
      if (!result.ok()) return result.status().WithContext(where);
      uint64_t oldest = std::numeric_limits<uint64_t>::max();
      for (const SampleOutput& s : result->samples) {
        if (!s.weight_versions.empty())
          oldest = std::min(oldest, s.weight_versions.front());
      }
      if (oldest >= required_version) {
        result->id = id;
        return result;
      }
      // Sampled from weights the trainer has moved past: a restarted
      // server, or one that missed a push.
      stale_replies_.fetch_add(1);
      MarkBehind(server);
      last = UnavailableError(where + " sampled with weight version " +
                              std::to_string(oldest) + ", older than the " +
                              std::to_string(required_version) + " required");
    }
    if (attempt < options_.max_attempts) {
      retries_.fetch_add(1);
      LOG(WARNING) << "request " << id << ": attempt " << attempt << " of "
                   << options_.max_attempts << " failed (" << last
                   << "); retrying on another server";
    }
  }
  return last.WithContext("request " + std::to_string(id) + " failed after " +
                          std::to_string(options_.max_attempts) + " attempts");
}

std::pair<size_t, uint64_t> RolloutClient::PickServer(
    const std::vector<bool>& tried) {
  const bool least_loaded =
      options_.policy == RolloutClientOptions::Policy::kLeastLoaded;
  if (least_loaded) MaybeRefreshLoads();
  std::lock_guard<std::mutex> lock(load_mu_);
  const size_t n = urls_.size();
  const SteadyClock::time_point now = SteadyClock::now();
  size_t best = n;
  std::tuple<bool, bool, SteadyClock::duration, bool, int64_t> best_key;
  // Scanning from a rotating start breaks ties in turn (and is the whole of
  // round-robin among servers that answer).
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (next_server_ + k) % n;
    const ServerLoad& l = loads_[i];
    const bool down =
        l.last_failure > l.last_success && now - l.last_failure < kDownPeriod;
    const std::tuple<bool, bool, SteadyClock::duration, bool, int64_t> key = {
        l.behind, down, down ? now - l.last_success : SteadyClock::duration(),
        tried[i], least_loaded ? l.reported + l.in_flight : 0};
    if (best == n || key < best_key) {
      best = i;
      best_key = key;
    }
  }
  next_server_ = least_loaded ? (next_server_ + 1) % n : (best + 1) % n;
  ++loads_[best].in_flight;
  return {best, required_version_};
}

void RolloutClient::FinishAttempt(size_t server, bool failed) {
  std::lock_guard<std::mutex> lock(load_mu_);
  --loads_[server].in_flight;
  RecordOutcome(loads_[server], failed);
}

void RolloutClient::RecordOutcome(ServerLoad& load, bool failed) {
  (failed ? load.last_failure : load.last_success) = SteadyClock::now();
}

void RolloutClient::MaybeRefreshLoads() {
  {
    std::lock_guard<std::mutex> lock(load_mu_);
    if (refreshing_ ||
        SteadyClock::now() - loads_refreshed_ < kLoadRefreshPeriod)
      return;
    refreshing_ = true;
  }
  std::vector<std::optional<int64_t>> fresh(urls_.size());
  std::vector<int> statuses(urls_.size(), 0);
  for (size_t i = 0; i < urls_.size(); ++i) {
    HttpReply r =
        Call(i, Method::kGet, "/get_load", "", "", kLoadPollTimeoutSeconds);
    statuses[i] = r.status;
    const json load = ParseJson(r.body);
    const json* running =
        load.is_object() ? JsonMember(load, "running_requests") : nullptr;
    const json* waiting =
        load.is_object() ? JsonMember(load, "waiting_requests") : nullptr;
    if (r.status == 200 && running != nullptr && waiting != nullptr &&
        running->is_number_integer() && waiting->is_number_integer())
      fresh[i] = running->get<int64_t>() + waiting->get<int64_t>();
  }
  std::vector<size_t> unreachable;
  {
    std::lock_guard<std::mutex> lock(load_mu_);
    for (size_t i = 0; i < urls_.size(); ++i) {
      RecordOutcome(loads_[i], !fresh[i].has_value());
      if (fresh[i]) loads_[i].reported = *fresh[i];
      if (!fresh[i] && statuses[i] == 0) unreachable.push_back(i);
    }
    loads_refreshed_ = SteadyClock::now();
    refreshing_ = false;
  }
  // It may come back restarted: it must catch up before it serves.
  for (size_t i : unreachable) MarkBehind(i);
}

// ---- HTTP ------------------------------------------------------------------

RolloutClient::HttpReply RolloutClient::Call(size_t server, Method method,
                                             const std::string& path,
                                             const std::string& body,
                                             const std::string& content_type,
                                             double read_timeout_seconds) {
  const Endpoint& e = endpoints_[server];
  httplib::Client client(e.host, e.port);
  SetHttpTimeouts(client, options_.connect_timeout_seconds,
                  read_timeout_seconds, options_.request_timeout_seconds);
  if (!options_.admin_token.empty())
    client.set_bearer_token_auth(options_.admin_token);
  {
    std::lock_guard<std::mutex> lock(active_mu_);
    if (cancelled_)
      return {0, "", AbortedError("the rollout client is shutting down")};
    active_.insert(&client);
  }
  // The body is handed out from where it lies: httplib would otherwise
  // copy it first (a fresh 256 MiB for every update chunk).
  auto provide = [&body](size_t offset, size_t length,
                         httplib::DataSink& sink) {
    return sink.write(body.data() + offset, std::min(length, size_t{1} << 20));
  };
  httplib::Result res =
      method == Method::kGet
          ? client.Get(path)
          : client.Post(path, {}, body.size(), provide, content_type);
  {
    std::lock_guard<std::mutex> lock(active_mu_);
    active_.erase(&client);
    if (cancelled_ && !res)
      return {0, "", AbortedError("the rollout client is shutting down")};
  }
  if (!res) {
    return {0, "",
            UnavailableError(urls_[server] + path + ": " +
                             TransportError(res.error()))};
  }
  return {res->status, std::move(res->body), OkStatus()};
}

ServerResult RolloutClient::CallJson(size_t server, Method method,
                                     const std::string& path,
                                     const std::string& body,
                                     const std::string& content_type) {
  HttpReply r = Call(server, method, path, body, content_type,
                     options_.request_timeout_seconds);
  ServerResult out{urls_[server], r.transport, ParseJson(r.body), r.status};
  if (r.status == 0) return out;
  if (r.status < 200 || r.status >= 300) {
    out.status = HttpError(urls_[server] + path, r.status, out.reply, r.body);
  } else if (out.reply.is_null()) {
    out.status =
        DataLossError(urls_[server] + path + ": the reply is not JSON");
  }
  return out;
}

std::vector<ServerResult> RolloutClient::FanOut(
    const std::function<ServerResult(size_t)>& call) {
  std::vector<ServerResult> results(urls_.size());
  std::vector<std::thread> threads;
  threads.reserve(urls_.size());
  for (size_t i = 0; i < urls_.size(); ++i)
    threads.emplace_back([&results, &call, i] { results[i] = call(i); });
  for (std::thread& t : threads) t.join();
  return results;
}

// ---- Admin -----------------------------------------------------------------

ServerResult RolloutClient::PushUpdate(size_t server,
                                       const WireUpdate& update) {
  const std::string protobuf = "application/x-protobuf";
  if (!update.streamed())
    return CallJson(server, Method::kPost, "/admin/update_params",
                    update.message, protobuf);
  // A stream cut off here is dropped by the server after its idle timeout,
  // or superseded by the next begin (a catch-up starts it over).
  ServerResult r = CallJson(server, Method::kPost, "/admin/update_stream/begin",
                            update.begin, protobuf);
  for (size_t c = 0; r.status.ok() && c < update.chunks.size(); ++c)
    r = CallJson(server, Method::kPost, "/admin/update_stream/chunk",
                 update.chunks[c], protobuf);
  if (!r.status.ok()) return r;
  return CallJson(server, Method::kPost, "/admin/update_stream/commit",
                  update.commit, protobuf);
}

std::vector<ServerResult> RolloutClient::BroadcastUpdate(
    const WireUpdate& update) {
  return FanOut([&](size_t i) { return PushUpdate(i, update); });
}

std::vector<ServerResult> RolloutClient::Checksums() {
  return FanOut([&](size_t i) {
    return CallJson(i, Method::kGet, "/admin/weights_checksum");
  });
}

std::vector<ServerResult> RolloutClient::Perturb(uint64_t seed, double scale,
                                                 int64_t num_leaves) {
  const std::string body =
      JsonText({{"seed", seed}, {"scale", scale}, {"num_leaves", num_leaves}});
  return FanOut([&](size_t i) {
    return CallJson(i, Method::kPost, "/admin/perturb_weights", body);
  });
}

std::vector<ServerResult> RolloutClient::Reload(
    const std::string& model_path, const std::string& load_format, bool wait,
    std::optional<uint64_t> weight_version) {
  json request = {{"model_path", model_path}, {"load_format", load_format}};
  if (weight_version) request["weight_version"] = *weight_version;
  const std::string body = JsonText(request);
  return FanOut([&](size_t i) {
    ServerResult started =
        CallJson(i, Method::kPost, "/admin/reload_weights", body);
    if (!started.status.ok() || !wait) return started;
    return WaitForReload(i);
  });
}

ServerResult RolloutClient::WaitForReload(size_t server) {
  const auto deadline =
      SteadyClock::now() +
      std::chrono::duration_cast<SteadyClock::duration>(
          std::chrono::duration<double>(options_.request_timeout_seconds));
  for (;;) {
    ServerResult r = CallJson(server, Method::kGet, "/admin/reload_status");
    if (!r.status.ok()) return r;
    const json* state = JsonMember(r.reply, "state");
    const std::string name =
        state != nullptr && state->is_string() ? state->get<std::string>() : "";
    if (name == "done") return r;
    if (name == "failed") {
      const json* error = JsonMember(r.reply, "error");
      r.status = AbortedError(r.url + ": reload failed: " +
                              (error != nullptr && error->is_string()
                                   ? error->get<std::string>()
                                   : JsonText(r.reply)));
      return r;
    }
    if (name != "loading" && name != "applying") {
      r.status = DataLossError(r.url + ": unexpected reload status " +
                               JsonText(r.reply));
      return r;
    }
    if (SteadyClock::now() > deadline) {
      r.status = UnavailableError(
          r.url + ": the reload did not finish in " +
          std::to_string(options_.request_timeout_seconds) + " s");
      return r;
    }
    std::this_thread::sleep_for(kReloadPollPeriod);
  }
}

std::vector<ServerResult> RolloutClient::Models() {
  return FanOut(
      [&](size_t i) { return CallJson(i, Method::kGet, "/v1/models"); });
}

std::vector<ServerResult> RolloutClient::Loads() {
  return FanOut(
      [&](size_t i) { return CallJson(i, Method::kGet, "/get_load"); });
}

}  // namespace rlrt
