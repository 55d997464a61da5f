// Fuzzes the checks a request's head passes before its body is read
// (sampler/server/request_screen.h) with arbitrary Host, Origin and
// Content-Type values. Contracts: nothing crashes; a refusal is a 4xx whose
// message stays short whatever the client sent; on a loopback server an
// accepted Host names a loopback address; an accepted Origin is the
// server's own "http://<Host>"; an accepted Content-Type has the route's
// media type.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "sampler/server/request_screen.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace rlrt::fuzz {
namespace {

void CheckRefusal(const std::optional<Refusal>& r) {
  if (!r) return;
  FUZZ_CHECK(r->http_status >= 400 && r->http_status < 500, "status %d",
             r->http_status);
  FUZZ_CHECK(r->message.size() < 400, "message of %zu bytes",
             r->message.size());
}

bool IsLoopbackName(const std::string& name) {
  return name == "localhost" || name == "::1" || name.rfind("127.", 0) == 0;
}

}  // namespace
}  // namespace rlrt::fuzz

// Input: Host, Origin and Content-Type separated by '\n'.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlrt;
  using namespace rlrt::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t a = input.find('\n');
  const size_t b = a == std::string_view::npos ? a : input.find('\n', a + 1);
  const std::string_view host = input.substr(0, a);
  const std::string_view origin = a == std::string_view::npos
                                      ? std::string_view()
                                      : input.substr(a + 1, b - a - 1);
  const std::string_view type =
      b == std::string_view::npos ? std::string_view() : input.substr(b + 1);

  const ScreenPolicy loopback{"127.0.0.1", {}, {}};
  const std::optional<Refusal> host_refusal = ScreenHost(loopback, host);
  CheckRefusal(host_refusal);
  const std::string name = HostName(host);
  if (!host_refusal && !name.empty()) {
    FUZZ_CHECK(IsLoopbackName(name), "accepted Host names %s", name.c_str());
  }
  const std::optional<Refusal> origin_refusal =
      ScreenOrigin(loopback, origin, host);
  CheckRefusal(origin_refusal);
  if (!origin_refusal && !origin.empty()) {
    const std::string trimmed(TrimWhitespace(origin));
    // Blank is no Origin at all; anything else must be this server's.
    if (!trimmed.empty()) {
      FUZZ_CHECK(AsciiLower(trimmed).rfind("http://", 0) == 0,
                 "accepted a foreign Origin");
      FUZZ_CHECK(!host_refusal, "accepted an Origin for a refused Host");
    }
  }
  for (BodyKind kind : {BodyKind::kJson, BodyKind::kProtobuf}) {
    const std::optional<Refusal> r = ScreenContentType(kind, type);
    CheckRefusal(r);
    if (!r) {
      const std::string media = AsciiLower(type.substr(0, type.find(';')));
      FUZZ_CHECK(media.find(kind == BodyKind::kJson
                                ? "application/json"
                                : "application/") != std::string::npos,
                 "accepted Content-Type without the media type");
    }
  }
  const ScreenPolicy any{"0.0.0.0", {"proxy.internal"}, {}};
  CheckRefusal(ScreenHost(any, host));
  return 0;
}
