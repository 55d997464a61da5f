#include "sampler/server/connection_gate.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>

namespace rlrt {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kHeadEnd = "\r\n\r\n";
// After its response, a client that is still uploading (a refused body) is
// read and discarded this long, so it sees the response rather than a reset.
constexpr auto kLinger = std::chrono::seconds(2);

std::string ErrorResponse(int code, std::string_view reason,
                          const std::string& message) {
  const std::string body =
      nlohmann::json{{"error", {{"message", message}, {"code", code}}}}.dump();
  return "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) +
         "\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// For a socket that is about to be closed: best effort, never blocks.
void AnswerAndClose(int fd, const std::string& response) {
  (void)::send(fd, response.data(), response.size(),
               MSG_NOSIGNAL | MSG_DONTWAIT);
  ::close(fd);
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// "METHOD SP target SP version": the target up to its query string.
std::string_view RequestPath(std::string_view head) {
  const size_t start = head.find(' ');
  if (start == std::string_view::npos) return {};
  const size_t end = head.find_first_of(" ?\r", start + 1);
  if (end == std::string_view::npos) return {};
  return head.substr(start + 1, end - start - 1);
}

void SetBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

void SetSendTimeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

StatusOr<int> ListenTcp(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &found) != 0)
    return UnavailableError("cannot resolve " + host);
  int fd = -1;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  a->ai_protocol);
    if (fd < 0) continue;
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 &&
        ::listen(fd, SOMAXCONN) == 0)
      break;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(found);
  if (fd < 0)
    return UnavailableError("cannot listen on " + host + ":" +
                            std::to_string(port));
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return -1;
  if (addr.ss_family == AF_INET)
    return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return -1;
}

int ConnectUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return -1;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

bool UsesReservedSlot(std::string_view path) {
  return path == "/health" || path == "/get_load" || path == "/metrics" ||
         path == "/v1/models" || path.starts_with("/admin/");
}

// A connection the door thread owns: its head is being read, or it waits
// for a slot with its head read.
struct ConnectionGate::Pending {
  uint64_t id = 0;
  std::string head;  // The head and whatever body bytes came with it.
  Clock::time_point deadline;
  bool complete = false;
  bool reserved = false;
};

ConnectionGate::ConnectionGate(const GateOptions& options)
    : options_(options) {}

ConnectionGate::~ConnectionGate() { Stop(); }

StatusOr<std::unique_ptr<ConnectionGate>> ConnectionGate::Start(
    const GateOptions& options) {
  if (options.general_slots < 1 || options.reserved_slots < 1)
    return InvalidArgumentError("the gate needs at least one slot per class");
  if (options.max_head_bytes < 256 || options.max_pending < 1)
    return InvalidArgumentError("max_head_bytes >= 256, max_pending >= 1");
  if (options.upstream_unix_path.empty() ||
      options.upstream_unix_path.size() >= sizeof(sockaddr_un::sun_path))
    return InvalidArgumentError(
        "the upstream Unix socket path is empty or "
        "too long");
  std::unique_ptr<ConnectionGate> gate(new ConnectionGate(options));
  StatusOr<int> fd = ListenTcp(options.host, options.port);
  if (!fd.ok()) return fd.status();
  gate->listen_fd_ = *fd;
  gate->port_ = BoundPort(*fd);
  gate->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  gate->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (gate->epoll_fd_ < 0 || gate->wake_fd_ < 0 || gate->port_ < 0)
    return InternalError(std::string("gate setup: ") + std::strerror(errno));
  for (int watched : {gate->listen_fd_, gate->wake_fd_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = watched;
    ::epoll_ctl(gate->epoll_fd_, EPOLL_CTL_ADD, watched, &ev);
  }
  ConnectionGate* raw = gate.get();
  gate->door_ = std::thread([raw] { raw->RunDoor(); });
  return gate;
}

void ConnectionGate::WakeDoor() {
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

void ConnectionGate::StopAccepting() {
  if (!door_.joinable()) return;
  stopping_ = true;
  WakeDoor();
  door_.join();
}

void ConnectionGate::Stop() {
  StopAccepting();
  {
    std::unique_lock<std::mutex> lock(mu_);
    relays_done_.wait(lock, [this] { return relays_running_ == 0; });
  }
  for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

bool ConnectionGate::ClientConnected(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = clients_.find(id);
  return it == clients_.end() || it->second;
}

GateStats ConnectionGate::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  GateStats s = stats_;
  s.general_in_use = general_in_use_;
  s.reserved_in_use = reserved_in_use_;
  return s;
}

void ConnectionGate::ReleaseSlot(bool reserved) {
  WakeDoor();
  // Nothing of this object is touched after the count drops: Stop() may
  // destroy it as soon as the last relay is counted out.
  std::lock_guard<std::mutex> lock(mu_);
  (reserved ? reserved_in_use_ : general_in_use_)--;
  --relays_running_;
  relays_done_.notify_all();
}

void ConnectionGate::RunDoor() {
  std::unordered_map<int, Pending> pending;
  std::deque<int> waiting;  // Complete heads in arrival order.
  uint64_t next_id = 1;

  auto drop = [&](int fd) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    pending.erase(fd);
    std::erase(waiting, fd);
  };
  auto refuse = [&](int fd, int code, std::string_view reason,
                    const std::string& message) {
    drop(fd);
    AnswerAndClose(fd, ErrorResponse(code, reason, message));
  };
  // Takes a slot of the connection's class, or a general one for a
  // reserved request when its own are taken.
  auto take_slot = [&](bool wants_reserved, bool* took_reserved) {
    std::lock_guard<std::mutex> lock(mu_);
    if (wants_reserved && reserved_in_use_ < options_.reserved_slots) {
      ++reserved_in_use_;
      *took_reserved = true;
    } else if (general_in_use_ < options_.general_slots) {
      ++general_in_use_;
      *took_reserved = false;
    } else {
      return false;
    }
    ++relays_running_;
    ++stats_.admitted;
    return true;
  };
  auto admit = [&](int fd) {
    Pending& p = pending[fd];
    bool reserved = false;
    if (!take_slot(p.reserved, &reserved)) return false;
    const uint64_t id = p.id;
    std::string head = std::move(p.head);
    drop(fd);
    std::thread([this, fd, id, head = std::move(head), reserved]() mutable {
      Relay(fd, id, std::move(head), reserved);
    }).detach();
    return true;
  };
  auto accept_all = [&] {
    while (true) {
      const int fd =
          ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or an error the next accept reports.
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.accepted;
        if (pending.size() >= static_cast<size_t>(options_.max_pending))
          ++stats_.refused_busy;
      }
      if (pending.size() >= static_cast<size_t>(options_.max_pending)) {
        AnswerAndClose(fd, ErrorResponse(503, "Service Unavailable",
                                         "too many connections waiting"));
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
      Pending& p = pending[fd];
      p.id = next_id++;
      p.deadline = Clock::now() + options_.head_timeout;
    }
  };
  auto read_head = [&](int fd, uint32_t events) {
    Pending& p = pending[fd];
    if (p.complete) {  // Waiting: only a hang-up is reported.
      if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        drop(fd);
        ::close(fd);
      }
      return;
    }
    while (true) {
      const size_t room = options_.max_head_bytes - p.head.size();
      if (room == 0) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++stats_.heads_too_large;
        }
        return refuse(fd, 431, "Request Header Fields Too Large",
                      "the request line and headers exceed " +
                          std::to_string(options_.max_head_bytes) + " bytes");
      }
      const size_t old = p.head.size();
      p.head.resize(old + room);
      const ssize_t n = ::recv(fd, p.head.data() + old, room, 0);
      p.head.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        drop(fd);  // The client left before finishing its head.
        ::close(fd);
        return;
      }
      if (n < 0) return;  // Wait for more.
      const size_t from = old >= 3 ? old - 3 : 0;
      if (p.head.find(kHeadEnd, from) == std::string::npos) continue;
      p.complete = true;
      p.reserved = UsesReservedSlot(RequestPath(p.head));
      if (admit(fd)) return;
      epoll_event ev{};
      ev.events = EPOLLRDHUP;  // Body bytes stay in the socket meanwhile.
      ev.data.fd = fd;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
      waiting.push_back(fd);
      return;
    }
  };

  epoll_event events[64];
  while (!stopping_) {
    const int n = ::epoll_wait(epoll_fd_, events, 64, /*timeout_ms=*/50);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listen_fd_) {
        accept_all();
      } else if (fd == wake_fd_) {
        uint64_t count;
        (void)!::read(wake_fd_, &count, sizeof(count));
      } else if (pending.count(fd)) {
        read_head(fd, events[i].events);
      }
    }
    // Reserved requests first: they are what a full server must still
    // answer.
    for (bool reserved_pass : {true, false}) {
      for (auto it = waiting.begin(); it != waiting.end();) {
        const int fd = *it;
        if (pending[fd].reserved != reserved_pass) {
          ++it;
          continue;
        }
        const size_t index = static_cast<size_t>(it - waiting.begin());
        if (!admit(fd)) break;
        it = waiting.begin() + static_cast<std::ptrdiff_t>(index);
      }
    }
    const Clock::time_point now = Clock::now();
    std::vector<int> late;
    for (const auto& [fd, p] : pending)
      if (!p.complete && now > p.deadline) late.push_back(fd);
    for (int fd : late) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.head_timeouts;
      }
      refuse(fd, 408, "Request Timeout",
             "the request line and headers did not arrive within " +
                 std::to_string(options_.head_timeout.count()) + " ms");
    }
    std::lock_guard<std::mutex> lock(mu_);
    stats_.pending = static_cast<int>(pending.size());
  }
  for (const auto& [fd, p] : pending) ::close(fd);
  std::lock_guard<std::mutex> lock(mu_);
  stats_.pending = 0;
}

void ConnectionGate::Relay(int client_fd, uint64_t id, std::string head,
                           bool reserved) {
  SetBlocking(client_fd);
  SetSendTimeout(client_fd, options_.send_timeout);
  const int upstream = ConnectUnix(options_.upstream_unix_path);
  if (upstream < 0) {
    AnswerAndClose(client_fd, ErrorResponse(503, "Service Unavailable",
                                            "the server is shutting down"));
    return ReleaseSlot(reserved);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    clients_[id] = true;
  }
  // The id header goes right after the request line, before any header of
  // the same name the client may have sent (the library reads the first).
  const size_t line_end = head.find("\r\n") + 2;
  const std::string forwarded = head.substr(0, line_end) + kConnectionHeader +
                                ": " + std::to_string(id) + "\r\n" +
                                head.substr(line_end);
  head.clear();
  head.shrink_to_fit();

  std::atomic<bool> response_done{false};
  std::atomic<Clock::rep> linger_until{0};
  // Client to upstream: the body. It also notices a client that leaves.
  std::thread uploader([&] {
    bool upstream_open = SendAll(upstream, forwarded);
    std::string buffer(size_t{256} << 10, '\0');
    while (true) {
      if (response_done &&
          Clock::now().time_since_epoch().count() > linger_until.load())
        break;
      pollfd p{client_fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, /*timeout_ms=*/200);
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) continue;
      const ssize_t n =
          ready < 0 ? -1 : ::recv(client_fd, buffer.data(), buffer.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (!response_done) {
          std::lock_guard<std::mutex> lock(mu_);
          clients_[id] = false;
        }
        break;
      }
      // After a refusal the library stops reading: the rest is discarded.
      if (upstream_open)
        upstream_open = SendAll(
            upstream, std::string_view(buffer.data(), static_cast<size_t>(n)));
    }
    ::shutdown(upstream, SHUT_WR);  // Shows the library the client is gone.
  });

  // Upstream to client: the response, until the library closes (one
  // request per connection).
  {
    std::string buffer(size_t{256} << 10, '\0');
    while (true) {
      const ssize_t n = ::recv(upstream, buffer.data(), buffer.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (!SendAll(client_fd,
                   std::string_view(buffer.data(), static_cast<size_t>(n))))
        break;
    }
  }
  linger_until = (Clock::now() + kLinger).time_since_epoch().count();
  response_done = true;
  ::shutdown(client_fd, SHUT_WR);
  uploader.join();
  ::close(upstream);
  ::close(client_fd);
  {
    std::lock_guard<std::mutex> lock(mu_);
    clients_.erase(id);
  }
  ReleaseSlot(reserved);
}

}  // namespace rlrt
