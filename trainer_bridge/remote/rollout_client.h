// The trainer's side of remote rollouts: a pool of HTTP clients over one or
// more rollout servers (sampler/server/rollout_server.h).
//
// Generation goes to one server per request, chosen least-loaded (the
// servers' /get_load, cached for ~50 ms, plus what this client has in flight
// to each) or round-robin. Submit queues the call on the client's own worker
// threads and returns an ordinary RequestHandle at once, so code written for
// SamplerEngine::Submit works unchanged against remote engines.
//
// A transport failure (connection refused, reset, timeout) or an HTTP 5xx is
// retried on another server, up to max_attempts per request: a request with a
// seed reproduces the same sample wherever it runs. A 4xx is the request's
// own fault and comes back at once, with the server's message. A server that
// failed is avoided for a second (both policies) while others answer.
//
// Admin calls (weight updates, reloads, checksums, perturbations, loads) fan
// out to every server in parallel and report one result per server, in the
// order of `urls`.
//
// Required weights: once the trainer has pushed version v (see
// SetRequiredWeights), only servers holding at least v take generation. A
// server that missed a push (it was down) or answers with older weights (it
// was restarted) is "behind": its reply is discarded and the request retried
// on another server, and a catch-up thread sends it the update for v as soon
// as it answers again; then it rejoins. A server that cannot be reached is
// treated as behind too, since it may come back restarted.
//
// Thread-safe: any thread may call any method. The destructor fails the
// requests still queued (Aborted), cuts off the calls in progress (Aborted;
// one caught just before it connects runs to its end) and joins the workers.
#ifndef RLRT_TRAINER_BRIDGE_REMOTE_ROLLOUT_CLIENT_H_
#define RLRT_TRAINER_BRIDGE_REMOTE_ROLLOUT_CLIENT_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"
#include "base/timing.h"
#include "sampler/request.h"
#include "sampler/request_handle.h"
#include "trainer_bridge/wire_update.h"

namespace httplib {
class Client;
}  // namespace httplib

namespace rlrt {

struct RolloutClientOptions {
  // "http://host:port" (a trailing "/" is allowed; no path, no https).
  std::vector<std::string> urls;
  enum class Policy { kLeastLoaded, kRoundRobin };
  Policy policy = Policy::kLeastLoaded;
  // Sent as "Authorization: Bearer <token>" when not empty.
  std::string admin_token;
  // Tries per generation request; each retry goes to a server not tried
  // yet, unless all of those are down (see PickServer).
  int max_attempts = 3;
  // Reading a reply (a whole generation) or writing a body (an update).
  double request_timeout_seconds = 600;
  double connect_timeout_seconds = 5;
  // Generation calls in flight at once; more are queued.
  int worker_threads = 64;
  // Create checks every server's /health and fails when one does not answer.
  bool check_health = true;
  // Weight pushes whose payload is larger go as a stream of chunks of at
  // most this many bytes (RemoteRollouts::PushWeights).
  size_t update_chunk_bytes = kDefaultUpdateChunkBytes;
};

// One server's answer to an admin call: `reply` is its JSON body (the error
// body too, when it sent one); `status` is OK only for a 2xx JSON reply.
struct ServerResult {
  std::string url;
  Status status;
  nlohmann::json reply;
  int http_status = 0;  // 0: the server could not be reached.
};

class RolloutClient {
 public:
  // Validates the URLs and (with check_health) that each server answers
  // /health; the error names the servers that do not.
  static StatusOr<std::unique_ptr<RolloutClient>> Create(
      const RolloutClientOptions& options);
  ~RolloutClient();
  RolloutClient(const RolloutClient&) = delete;
  RolloutClient& operator=(const RolloutClient&) = delete;

  // POST /generate, on a worker thread. The request's prompt is input_ids
  // or text (chat messages and streaming callbacks are refused here). The
  // result holds the server's samples: token ids, text, logprobs (when
  // asked), finish reasons, seeds and weight versions; prompt_ids are the
  // input_ids (a text prompt's ids are not returned by the server, so they
  // stay empty); result.id is the handle's id.
  //
  // With return_logprobs the server sends every token's weight version.
  // Without, only [min, max] over the sample's tokens: versions never
  // decrease within a sample, so the first token gets min and the last max,
  // both exact, and the tokens between get max (exact whenever min == max,
  // i.e. no update landed during the sample).
  StatusOr<RequestHandle> Submit(const GenerateRequest& request);
  // Submit and wait.
  StatusOr<GenerateResult> Generate(const GenerateRequest& request);

  // POST /admin/update_params with the serialized proto::UpdateParams, or
  // the stream's begin, chunks and commit (/admin/update_stream/...) to each
  // server, all servers at once. A server's result is its commit's reply,
  // or the first refusal.
  std::vector<ServerResult> BroadcastUpdate(const WireUpdate& update);
  // GET /admin/weights_checksum.
  std::vector<ServerResult> Checksums();
  // POST /admin/perturb_weights.
  std::vector<ServerResult> Perturb(uint64_t seed, double scale,
                                    int64_t num_leaves);
  // POST /admin/reload_weights; with `wait`, polls /admin/reload_status
  // until the reload is done (the reply is its final status) or failed (an
  // error with the server's reason).
  // `weight_version`, when given, is the version the reloaded weights carry
  // (the server refuses one older than its own).
  std::vector<ServerResult> Reload(const std::string& model_path,
                                   const std::string& load_format, bool wait,
                                   std::optional<uint64_t> weight_version = {});
  // GET /get_load.
  std::vector<ServerResult> Loads();
  // GET /v1/models: the base and the LoRA adapters each server holds.
  std::vector<ServerResult> Models();

  // From now on generation needs weights of at least `version`; `update`
  // (of that version) is what the catch-up thread sends to servers that
  // are behind.
  void SetRequiredWeights(uint64_t version,
                          std::shared_ptr<const WireUpdate> update);
  // The server missed an update (or cannot be reached): no generation goes
  // to it until it has caught up.
  void MarkBehind(size_t server);
  bool IsBehind(size_t server);

  const std::vector<std::string>& urls() const { return urls_; }
  const RolloutClientOptions& options() const { return options_; }
  // Generation attempts that failed and were tried again.
  int64_t retries() const { return retries_.load(); }
  // Replies discarded because the server held older weights than required.
  int64_t stale_replies() const { return stale_replies_.load(); }
  // Servers brought up to the required weights by the catch-up thread.
  int64_t catch_ups() const { return catch_ups_.load(); }

 private:
  struct Endpoint {
    std::string host;
    int port = 0;
  };
  struct ServerLoad {
    int64_t reported = 0;   // running + waiting requests, from /get_load.
    int64_t in_flight = 0;  // This client's calls to it.
    // The last call (or load poll) that got an answer, and the last that
    // got none or a 5xx. A server whose last outcome was a failure, less
    // than a second ago, is "down": picked only when every other candidate
    // is down too, and then the one that answered most recently first.
    SteadyClock::time_point last_success;
    SteadyClock::time_point last_failure;
    bool behind = false;  // See MarkBehind.
  };
  struct Job {
    uint64_t id = 0;
    GenerateRequest request;
    std::shared_ptr<RequestCompletion> done;
  };
  // An HTTP exchange: status 0 means the call never got a reply.
  struct HttpReply {
    int status = 0;
    std::string body;
    Status transport;
  };
  enum class Method { kGet, kPost };

  RolloutClient(const RolloutClientOptions& options,
                std::vector<std::string> urls, std::vector<Endpoint> endpoints);

  void WorkerLoop();
  StatusOr<GenerateResult> RunGenerate(uint64_t id,
                                       const GenerateRequest& request);
  // The server for the next attempt: one that is not behind, then not down
  // (see ServerLoad), then not in `tried`, then the policy's choice. Counts
  // the attempt in its in_flight and returns the required version then.
  std::pair<size_t, uint64_t> PickServer(const std::vector<bool>& tried);
  // Waits (up to the request timeout) while every server is behind.
  void WaitForAServerInStep();
  void CatchUpLoop();
  // One catch-up attempt on a server that is behind.
  void CatchUp(size_t server);
  void FinishAttempt(size_t server, bool failed);
  // Under load_mu_.
  void RecordOutcome(ServerLoad& load, bool failed);
  // Refreshes the cached loads when they are older than the refresh period
  // and no other thread is refreshing them.
  void MaybeRefreshLoads();

  HttpReply Call(size_t server, Method method, const std::string& path,
                 const std::string& body, const std::string& content_type,
                 double read_timeout_seconds);
  ServerResult CallJson(size_t server, Method method, const std::string& path,
                        const std::string& body = "",
                        const std::string& content_type = "application/json");
  ServerResult WaitForReload(size_t server);
  // One server's share of BroadcastUpdate.
  ServerResult PushUpdate(size_t server, const WireUpdate& update);
  // Runs call(i) for every server at once; results in server order.
  std::vector<ServerResult> FanOut(
      const std::function<ServerResult(size_t)>& call);

  const RolloutClientOptions options_;
  const std::vector<std::string> urls_;  // Normalized: no trailing "/".
  const std::vector<Endpoint> endpoints_;

  std::mutex load_mu_;
  std::vector<ServerLoad> loads_;  // Guarded by load_mu_, one per server.
  SteadyClock::time_point loads_refreshed_;            // load_mu_.
  bool refreshing_ = false;                            // load_mu_.
  size_t next_server_ = 0;                             // load_mu_.
  uint64_t required_version_ = 0;                      // load_mu_.
  std::shared_ptr<const WireUpdate> required_update_;  // load_mu_.

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Job> queue_;                // Guarded by queue_mu_.
  bool stopping_ = false;                // Guarded by queue_mu_.
  std::condition_variable catch_up_cv_;  // With queue_mu_; wakes CatchUpLoop.

  // Clients with a call in progress, so the destructor can cancel them.
  std::mutex active_mu_;
  std::set<httplib::Client*> active_;  // Guarded by active_mu_.
  bool cancelled_ = false;             // Guarded by active_mu_.

  std::atomic<uint64_t> next_id_{1};
  std::atomic<int64_t> retries_{0};
  std::atomic<int64_t> stale_replies_{0};
  std::atomic<int64_t> catch_ups_{0};
  std::vector<std::thread> workers_;  // Started in Create, joined in ~.
  std::thread catch_up_thread_;       // Started in Create, joined in ~.
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_REMOTE_ROLLOUT_CLIENT_H_
