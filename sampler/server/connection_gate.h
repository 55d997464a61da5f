// The rollout server's front door. It accepts TCP connections, reads each
// request head (request line and headers) itself under a byte limit and a
// deadline, and only then relays the connection to the HTTP library, which
// listens on a private Unix socket.
//
// Why: cpp-httplib 0.11.4 (Debian 12) reads a head with no bound on its
// bytes, its header count or its duration, so one client could grow a
// header line until memory runs out or hold a worker thread forever by
// sending a byte every few seconds. Here a head that is slow or too large
// costs one epoll entry and at most `max_head_bytes`, never a thread, and
// is answered 408 or 431.
//
// Admitted connections are counted in two classes: requests for /health,
// /get_load, /metrics, /v1/models and /admin/ have reserved slots, so a
// full set of generation requests (or of slow uploads) cannot starve them.
// A connection carries one request (the library answers with "Connection:
// close"); requests beyond the slots wait, heads already read, up to
// `max_pending` connections in all.
//
// Each relayed request gets a "X-Rlrt-Connection: <id>" header inserted
// right after its request line (so it comes before any header of the same
// name the client sent), and a handler can ask ClientConnected(id) whether
// its client is still there while it works on a non-streaming request.
#ifndef RLRT_SAMPLER_SERVER_CONNECTION_GATE_H_
#define RLRT_SAMPLER_SERVER_CONNECTION_GATE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "base/status.h"

namespace rlrt {

struct GateOptions {
  std::string host = "127.0.0.1";
  int port = 0;                    // 0: any free port.
  std::string upstream_unix_path;  // Where the HTTP library listens.
  size_t max_head_bytes = size_t{16} << 10;
  std::chrono::milliseconds head_timeout{10000};
  int general_slots = 32;
  int reserved_slots = 4;
  // Connections whose head is being read or waits for a slot; beyond this
  // a new connection is answered 503 at once.
  int max_pending = 1024;
  // A client that stops reading its response is dropped after this.
  std::chrono::milliseconds send_timeout{30000};
};

struct GateStats {
  uint64_t accepted = 0;
  uint64_t admitted = 0;
  uint64_t heads_too_large = 0;
  uint64_t head_timeouts = 0;
  uint64_t refused_busy = 0;
  int general_in_use = 0;
  int reserved_in_use = 0;
  int pending = 0;
};

// True when a request for `path` uses the reserved slots.
bool UsesReservedSlot(std::string_view path);

class ConnectionGate {
 public:
  static constexpr char kConnectionHeader[] = "X-Rlrt-Connection";

  // Binds, listens and starts the door thread.
  static StatusOr<std::unique_ptr<ConnectionGate>> Start(
      const GateOptions& options);
  ~ConnectionGate();  // Stop().

  // Stops accepting and closes connections whose head was not relayed.
  void StopAccepting();
  // StopAccepting(), then waits for every relay to end (they end when the
  // HTTP library closes its side, or after send_timeout).
  void Stop();

  int port() const { return port_; }
  // False once the client of relayed connection `id` has closed its side or
  // failed; true for ids the gate does not know (it cannot tell).
  bool ClientConnected(uint64_t id) const;
  GateStats stats() const;

 private:
  struct Pending;
  class Door;
  explicit ConnectionGate(const GateOptions& options);

  void RunDoor();
  // Relays one admitted connection until either side ends it.
  void Relay(int client_fd, uint64_t id, std::string head, bool reserved);
  void ReleaseSlot(bool reserved);
  void WakeDoor();

  const GateOptions options_;
  int port_ = 0;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: a slot was freed, or stop.
  std::atomic<bool> stopping_{false};
  std::thread door_;

  mutable std::mutex mu_;
  std::condition_variable relays_done_;
  int general_in_use_ = 0;   // Guarded by mu_.
  int reserved_in_use_ = 0;  // Guarded by mu_.
  int relays_running_ = 0;   // Guarded by mu_.
  // Relayed connections: id -> client still there. Guarded by mu_.
  std::unordered_map<uint64_t, bool> clients_;
  GateStats stats_;  // Counters guarded by mu_.
};

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SERVER_CONNECTION_GATE_H_
