// The rollout server: one SamplerEngine behind an HTTP API (cpp-httplib).
//
//   POST /generate                 SGLang-style generation
//   POST /v1/completions           OpenAI-compatible (+ server-sent events)
//   POST /v1/chat/completions      OpenAI-compatible, through the chat template
//   GET  /v1/models, /health, /get_load, /metrics (Prometheus text)
//   POST /admin/reload_weights     {"model_path", "load_format"}: background
//   GET  /admin/reload_status      idle/loading/applying/done/failed
//   GET  /admin/weights_checksum   float64 sum and content hash
//   POST /admin/perturb_weights    {"seed", "scale", "num_leaves"}
//   POST /admin/update_params      body: a serialized UpdateParams
//
// Weight changes keep the engine's guarantees: validated, applied whole at a
// step boundary, or refused with the old weights serving. Ordinary requests
// are not refused during a reload (they are served by the old weights until
// the swap, and every response says which version served it), unless
// reject_during_reload asks for the reference behaviour: HTTP 503.
//
// Admin endpoints need "Authorization: Bearer <admin_token>" when a token
// is set. Without a token they are served only when the server listens on a
// loopback address; elsewhere they answer 403.
#ifndef RLRT_SAMPLER_SERVER_ROLLOUT_SERVER_H_
#define RLRT_SAMPLER_SERVER_ROLLOUT_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "base/status.h"
#include "sampler/engine.h"
#include "sampler/server/server_metrics.h"
#include "sampler/server/weight_reloader.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace rlrt {

struct RolloutServerOptions {
  std::string host = "127.0.0.1";
  int port = 30000;  // 0: any free port (see port()).
  std::string admin_token;
  bool reject_during_reload = false;
  // JSON request bodies; larger ones get 413.
  size_t max_json_body_bytes = size_t{8} << 20;
  // /admin/update_params bodies (protobuf caps a message at 2 GiB).
  size_t max_update_body_bytes = size_t{2} << 30;
  std::string model_name = "rlrt";  // For /v1/models and responses.
  int http_threads = 32;            // Concurrent connections served.
};

class RolloutServer {
 public:
  // `engine` (and `staging_mesh`, which reads reloaded checkpoints; may be
  // null) must outlive the server.
  static StatusOr<std::unique_ptr<RolloutServer>> Create(
      SamplerEngine* engine, Mesh* staging_mesh,
      const RolloutServerOptions& options);
  ~RolloutServer();  // Stop().

  // Binds and starts serving on a background thread.
  Status Start();
  // Stops accepting, finishes the requests in progress, waits for a reload.
  void Stop();
  int port() const { return port_; }
  bool admin_enabled() const { return admin_enabled_; }

 private:
  RolloutServer(SamplerEngine* engine, Mesh* staging_mesh,
                const RolloutServerOptions& options);
  void Route();

  void HandleGenerate(const httplib::Request& req, httplib::Response& res);
  void HandleOpenAi(const httplib::Request& req, httplib::Response& res,
                    bool chat);
  void HandleReloadWeights(const httplib::Request& req, httplib::Response& res);
  void HandleReloadStatus(httplib::Response& res);
  void HandleChecksum(httplib::Response& res);
  void HandlePerturb(const httplib::Request& req, httplib::Response& res);
  void HandleUpdateParams(const httplib::Request& req, httplib::Response& res);
  void HandleLoad(httplib::Response& res);

  // Each answers the request itself and returns false when it must stop.
  bool AdminAllowed(const httplib::Request& req, httplib::Response& res);
  bool ServingAllowed(httplib::Response& res);
  bool BodyWithinLimit(const httplib::Request& req, httplib::Response& res,
                       size_t limit);

  SamplerEngine* const engine_;
  const RolloutServerOptions options_;
  bool admin_enabled_ = false;
  int port_ = 0;
  ServerMetrics metrics_;
  WeightReloader reloader_;
  std::atomic<uint64_t> next_completion_id_{1};
  std::mutex update_mu_;  // One /admin/update_params parse at a time.
  std::unique_ptr<httplib::Server> http_;
  std::thread listener_;
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& host);

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SERVER_ROLLOUT_SERVER_H_
