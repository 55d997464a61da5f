#include "sampler/server/http_reply.h"

#include <httplib.h>

#include "base/json_limits.h"
#include "sampler/server/api_json.h"

namespace rlrt {

using nlohmann::json;

void SendJson(httplib::Response& res, const json& body, int status) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
}

void SendError(httplib::Response& res, const Status& status, int http) {
  SendJson(res, ErrorBody(status, http), http);
}

void SendError(httplib::Response& res, const Status& status) {
  SendError(res, status, HttpStatusFor(status));
}

std::optional<json> ParseBody(const std::string& text, httplib::Response& res) {
  if (Status depth = CheckJsonDepth(text, "request body"); !depth.ok()) {
    SendError(res, depth);
    return std::nullopt;
  }
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    SendError(res, InvalidArgumentError("the request body is not valid JSON"));
    return std::nullopt;
  }
  if (!body.is_object()) {
    SendError(res, InvalidArgumentError("the request body must be an object"));
    return std::nullopt;
  }
  return body;
}

}  // namespace rlrt
