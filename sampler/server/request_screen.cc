#include "sampler/server/request_screen.h"

#include "base/strings.h"

namespace rlrt {
namespace {

bool IsLoopbackName(const std::string& name) {
  return name == "localhost" || name == "::1" || name.rfind("127.", 0) == 0;
}

bool IsWildcard(const std::string& name) {
  return name == "0.0.0.0" || name == "::" || name.empty();
}

// Long header values are cut in messages: the client chose them.
std::string Quoted(std::string_view value) {
  constexpr size_t kMax = 80;
  std::string out = "\"";
  out.append(value.substr(0, kMax));
  if (value.size() > kMax) out.append("...");
  out.push_back('"');
  return out;
}

}  // namespace

std::string HostName(std::string_view host_header) {
  std::string_view h = TrimWhitespace(host_header);
  if (!h.empty() && h.front() == '[') {
    const size_t close = h.find(']');
    return AsciiLower(close == std::string_view::npos ? h.substr(1)
                                                      : h.substr(1, close - 1));
  }
  const size_t colon = h.find(':');
  // More than one colon: a bare IPv6 address, no port.
  if (colon != std::string_view::npos &&
      h.find(':', colon + 1) == std::string_view::npos)
    h = h.substr(0, colon);
  return AsciiLower(h);
}

std::optional<Refusal> ScreenHost(const ScreenPolicy& policy,
                                  std::string_view host_header) {
  const std::string_view value = TrimWhitespace(host_header);
  if (value.empty()) return std::nullopt;
  const std::string name = HostName(value);
  const std::string bound = HostName(policy.bound_host);
  for (const std::string& allowed : policy.allowed_hosts) {
    if (AsciiLower(allowed) == AsciiLower(value) || HostName(allowed) == name)
      return std::nullopt;
  }
  if (name == bound) return std::nullopt;
  if ((IsLoopbackName(bound) || IsWildcard(bound)) && IsLoopbackName(name))
    return std::nullopt;
  if (IsWildcard(bound) && policy.allowed_hosts.empty()) return std::nullopt;
  return Refusal{403, "Host " + Quoted(value) +
                          " is not this server's address; a proxy or DNS "
                          "name must be listed in --allowed_hosts"};
}

std::optional<Refusal> ScreenOrigin(const ScreenPolicy& policy,
                                    std::string_view origin,
                                    std::string_view host_header) {
  const std::string_view value = TrimWhitespace(origin);
  if (value.empty()) return std::nullopt;
  const std::string lowered = AsciiLower(value);
  for (const std::string& allowed : policy.allowed_origins) {
    if (AsciiLower(allowed) == lowered) return std::nullopt;
  }
  const std::string_view host = TrimWhitespace(host_header);
  if (!host.empty() && lowered == "http://" + AsciiLower(host) &&
      !ScreenHost(policy, host))
    return std::nullopt;
  return Refusal{403, "requests from the web page at " + Quoted(value) +
                          " are refused (cross-origin); list it in "
                          "--allowed_origins to allow it"};
}

std::optional<Refusal> ScreenContentType(BodyKind kind,
                                         std::string_view content_type) {
  if (kind == BodyKind::kNone) return std::nullopt;
  const std::string media = AsciiLower(
      TrimWhitespace(content_type.substr(0, content_type.find(';'))));
  if (kind == BodyKind::kJson && media == "application/json")
    return std::nullopt;
  if (kind == BodyKind::kProtobuf && (media == "application/x-protobuf" ||
                                      media == "application/octet-stream"))
    return std::nullopt;
  return Refusal{
      415, "Content-Type " + Quoted(content_type) + " is refused; send " +
               (kind == BodyKind::kJson
                    ? std::string("\"Content-Type: application/json\"")
                    : std::string("\"Content-Type: application/x-protobuf\""))};
}

}  // namespace rlrt
