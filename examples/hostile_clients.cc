#include "examples/hostile_clients.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace rlrt {
namespace {

std::string Head(const std::string& method, const std::string& path,
                 const std::string& type, size_t length) {
  return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         "Content-Type: " + type +
         "\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
}

// Sends `prefix`, then `trickle` one byte at a time every half second until
// the server answers or closes; returns its status.
int Trickle(int fd, const std::string& prefix, const std::string& trickle) {
  if (!SendRaw(fd, prefix)) return -1;
  std::string reply;
  char buf[4096];
  for (char byte : trickle) {
    if (!SendRaw(fd, std::string(1, byte))) break;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      reply.append(buf, n);
      break;
    }
    if (n == 0) break;
  }
  reply += ReadRaw(fd);
  return RawStatus(reply);
}

}  // namespace

int ConnectRaw(const std::string& host, int port,
               double receive_timeout_seconds) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(),
                  &addr.sin_addr) != 1)
    return -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(receive_timeout_seconds);
  tv.tv_usec = static_cast<suseconds_t>(
      (receive_timeout_seconds - static_cast<double>(tv.tv_sec)) * 1e6);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

bool SendRaw(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n =
        ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string ReadRaw(int fd) {
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, n);
  return out;
}

int RawStatus(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return -1;
  return std::atoi(response.substr(9, 3).c_str());
}

const char* HostileKindName(HostileKind kind) {
  switch (kind) {
    case HostileKind::kSlowBody:
      return "slow_body";
    case HostileKind::kSlowHead:
      return "slow_head";
    case HostileKind::kAbandoned:
      return "abandoned";
    case HostileKind::kOversizeBody:
      return "oversize_body";
    case HostileKind::kEndlessHeader:
      return "endless_header";
    case HostileKind::kDeepJson:
      return "deep_json";
    case HostileKind::kCount:
      break;
  }
  return "unknown";
}

int RunHostileAction(HostileKind kind, const std::string& host, int port) {
  // Trickles read with a half-second timeout: that is their pace.
  const bool trickles =
      kind == HostileKind::kSlowBody || kind == HostileKind::kSlowHead;
  const int fd = ConnectRaw(host, port, trickles ? 0.5 : 30);
  if (fd < 0) return -1;
  int status = -1;
  switch (kind) {
    case HostileKind::kSlowBody:
      status = Trickle(fd, Head("POST", "/generate", "application/json", 1000),
                       std::string(1000, ' '));
      break;
    case HostileKind::kSlowHead:
      status = Trickle(fd, "GET /health HTTP/1.1\r\n", std::string(1000, 'X'));
      break;
    case HostileKind::kAbandoned: {
      const std::string body =
          R"({"text": "Once upon a time", "sampling_params": )"
          R"({"max_new_tokens": 400, "ignore_eos": true}})";
      SendRaw(fd, Head("POST", "/generate", "application/json", body.size()) +
                      body);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      break;
    }
    case HostileKind::kOversizeBody: {
      SendRaw(fd, Head("POST", "/admin/update_params", "application/x-protobuf",
                       size_t{3000000000}));
      const std::string chunk(1 << 20, 'x');
      for (int i = 0; i < 16 && SendRaw(fd, chunk); ++i) {
      }
      status = RawStatus(ReadRaw(fd));
      break;
    }
    case HostileKind::kEndlessHeader: {
      SendRaw(fd, "GET /health HTTP/1.1\r\nX-Long: ");
      const std::string chunk(1 << 20, 'a');
      for (int i = 0; i < 8 && SendRaw(fd, chunk); ++i) {
      }
      status = RawStatus(ReadRaw(fd));
      break;
    }
    case HostileKind::kDeepJson: {
      const std::string body = R"({"messages": [{"role": "user", "content": )" +
                               std::string(60000, '[') +
                               std::string(60000, ']') + "}]}";
      SendRaw(fd, Head("POST", "/v1/chat/completions", "application/json",
                       body.size()) +
                      body);
      status = RawStatus(ReadRaw(fd));
      break;
    }
    case HostileKind::kCount:
      break;
  }
  ::close(fd);
  return status;
}

}  // namespace rlrt
