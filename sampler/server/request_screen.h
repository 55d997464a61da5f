// Checks a request's head must pass before its body is read: the Host it was
// addressed to, the Origin of the page that sent it, and its Content-Type.
//
// Why each: with the admin endpoints open on loopback, a web page on the
// same machine could otherwise change the weights. A cross-site POST
// carries the page's Origin; a DNS-rebinding page is same-origin but names
// its own host in Host; and browsers send text/plain, form and multipart
// bodies cross-site without asking first, while application/json and
// application/x-protobuf need a CORS preflight this server never grants.
#ifndef RLRT_SAMPLER_SERVER_REQUEST_SCREEN_H_
#define RLRT_SAMPLER_SERVER_REQUEST_SCREEN_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlrt {

struct ScreenPolicy {
  std::string bound_host;  // The address the server listens on.
  // Extra Host values accepted (a name or "name:port"), for proxies and
  // DNS names of a server bound to one address.
  std::vector<std::string> allowed_hosts;
  // Extra Origin values accepted ("http://name:port"), besides the server's
  // own.
  std::vector<std::string> allowed_origins;
};

struct Refusal {
  int http_status;
  std::string message;
};

// The host part of a Host header ("name", "name:port", "[v6]:port"),
// lower-cased.
std::string HostName(std::string_view host_header);

// Accepted: no Host (HTTP/1.0 clients; browsers always send one); an
// allow-listed value; the bound address; on a loopback or wildcard bind,
// loopback names. On a wildcard bind with no allow-list, any Host.
std::optional<Refusal> ScreenHost(const ScreenPolicy& policy,
                                  std::string_view host_header);

// Accepted: no Origin (not a browser); "http://<Host>" (the server's own
// page); an allow-listed origin. Everything else, "null" included, is 403.
std::optional<Refusal> ScreenOrigin(const ScreenPolicy& policy,
                                    std::string_view origin,
                                    std::string_view host_header);

enum class BodyKind { kNone, kJson, kProtobuf };

// kJson: application/json; kProtobuf: application/x-protobuf or
// application/octet-stream (parameters such as charset are ignored).
// Anything else is 415.
std::optional<Refusal> ScreenContentType(BodyKind kind,
                                         std::string_view content_type);

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SERVER_REQUEST_SCREEN_H_
