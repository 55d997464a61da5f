// The rollout server: one SamplerEngine behind an HTTP API (cpp-httplib).
//
//   POST /generate                 SGLang-style generation
//   POST /v1/completions           OpenAI-compatible (+ server-sent events)
//   POST /v1/chat/completions      OpenAI-compatible, through the chat template
//   GET  /v1/models                the base and every loaded LoRA adapter
//   GET  /health, /get_load, /metrics (Prometheus text)
//   POST /v1/load_lora_adapter     {"lora_name", "lora_path"} (admin): a PEFT
//                                  adapter directory on the server, served
//                                  unmerged; requests pick it by "model"
//                                  (OpenAI) or "lora_path" (/generate)
//   POST /v1/unload_lora_adapter   {"lora_name"} (admin)
//   POST /admin/reload_weights     {"model_path", "load_format"}: background
//   GET  /admin/reload_status      idle/loading/applying/done/failed
//   GET  /admin/weights_checksum   float64 sum and content hash
//   POST /admin/perturb_weights    {"seed", "scale", "num_leaves"}
//   POST /admin/update_params      body: a serialized UpdateParams
//   POST /admin/update_stream/begin, /chunk, /commit
//                                  an update of any size, as a stream of
//                                  chunks (sampler/update_stream.h); bodies
//                                  are serialized UpdateStreamBegin,
//                                  UpdateChunk, UpdateStreamCommit
//   POST /admin/update_stream/abort  {"version"}
//   GET  /admin/update_stream/status
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
//
// Hostile clients: a ConnectionGate reads every request head under a size
// and time limit before the HTTP library sees it, and keeps slots for
// /health, /get_load, /metrics, /v1/models and admin. Every request is then
// screened on its head alone (Host, Origin, token, Content-Type, declared
// Content-Length against the route's limit) before a byte of its body is
// read, and a body must arrive in time. A non-streaming request whose
// client leaves is aborted, as a stream is. One request per connection.
#ifndef RLRT_SAMPLER_SERVER_ROLLOUT_SERVER_H_
#define RLRT_SAMPLER_SERVER_ROLLOUT_SERVER_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"
#include "sampler/engine.h"
#include "sampler/server/connection_gate.h"
#include "sampler/server/request_screen.h"
#include "sampler/server/server_metrics.h"
#include "sampler/server/weight_reloader.h"
#include "sampler/update_stream.h"

namespace httplib {
class Server;
class ContentReader;
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
  // /admin/update_params and /admin/update_stream/chunk bodies (protobuf
  // caps a message at 2 GiB).
  size_t max_update_body_bytes = size_t{2} << 30;
  // A streamed update with no message for this long is dropped.
  int update_stream_idle_timeout_ms = 60000;
  // The one model name served; requests naming another get 404.
  std::string model_name = "rlrt";
  int http_threads = 32;     // Requests served at once.
  int reserved_threads = 4;  // And these for /health, /get_load, admin...
  size_t max_head_bytes = size_t{16} << 10;  // Request line and headers.
  int head_timeout_ms = 10000;  // For the request line and headers.
  int body_timeout_ms = 20000;  // For a JSON body.
  // An update body gets body_timeout_ms plus its size at this rate.
  double min_update_bytes_per_second = 20e6;
  std::vector<std::string> allowed_hosts;    // See request_screen.h.
  std::vector<std::string> allowed_origins;  // See request_screen.h.
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
  GateStats gate_stats() const;

 private:
  using Body = const std::string&;
  using PostHandler =
      std::function<void(const httplib::Request&, Body, httplib::Response&)>;
  using GetHandler = std::function<void(httplib::Response&)>;
  struct RouteSpec {
    Endpoint endpoint;
    bool admin;
    BodyKind body;
    size_t body_limit;
  };

  RolloutServer(SamplerEngine* engine, Mesh* staging_mesh,
                const RolloutServerOptions& options);
  void Route();
  void AddPost(const std::string& path, RouteSpec spec, PostHandler handler);
  void AddGet(const std::string& path, RouteSpec spec, GetHandler handler);

  void HandleGenerate(const httplib::Request& req, Body body,
                      httplib::Response& res);
  void HandleOpenAi(const httplib::Request& req, Body body,
                    httplib::Response& res, bool chat);
  void HandleReloadWeights(Body body, httplib::Response& res);
  void HandleReloadStatus(httplib::Response& res);
  void HandleChecksum(httplib::Response& res);
  void HandlePerturb(Body body, httplib::Response& res);
  void HandleUpdateParams(Body body, httplib::Response& res);
  // The reply to a begin or a chunk: the refusal, or the stream's progress.
  void SendStreamStep(const Status& step, httplib::Response& res);
  void HandleStreamBegin(Body body, httplib::Response& res);
  void HandleStreamChunk(Body body, httplib::Response& res);
  void HandleStreamCommit(Body body, httplib::Response& res);
  void HandleStreamAbort(Body body, httplib::Response& res);
  void HandleStreamStatus(httplib::Response& res);
  void HandleLoad(httplib::Response& res);
  // rollout_server_lora.cc.
  void HandleLoadLora(Body body, httplib::Response& res);
  void HandleUnloadLora(Body body, httplib::Response& res);
  nlohmann::json ModelsJson() const;
  // The adapter an OpenAI request's "model" names: "" for the base (or no
  // model); NotFound, listing what is served, for anything else.
  StatusOr<std::string> AdapterForModel(const std::string& model) const;

  // Runs on the head alone, before any body byte is read: answers and
  // returns true when the request is refused.
  bool Screen(const httplib::Request& req, httplib::Response& res);
  // Reads the body within the route's limit and deadline; answers 413, 408
  // or 400 itself and returns false when it cannot.
  bool ReadBody(const httplib::Request& req,
                const httplib::ContentReader& reader, const RouteSpec& spec,
                std::string* body, httplib::Response& res);
  // Generate, aborting the request if its client leaves meanwhile.
  StatusOr<GenerateResult> GenerateWhileConnected(const httplib::Request& req,
                                                  GenerateRequest request);
  bool ServingAllowed(httplib::Response& res);

  SamplerEngine* const engine_;
  const RolloutServerOptions options_;
  const ScreenPolicy screen_;
  bool admin_enabled_ = false;
  int port_ = 0;
  ServerMetrics metrics_;
  WeightReloader reloader_;
  UpdateStreamReceiver stream_receiver_;
  std::atomic<uint64_t> next_completion_id_{1};
  // (method, path) -> spec; written by Route() before serving, then read.
  std::map<std::pair<std::string, std::string>, RouteSpec> routes_;
  std::unique_ptr<httplib::Server> http_;
  std::thread listener_;
  std::string socket_dir_;  // Private directory of the library's socket.
  std::unique_ptr<ConnectionGate> gate_;
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& host);

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SERVER_ROLLOUT_SERVER_H_
