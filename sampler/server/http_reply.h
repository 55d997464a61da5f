// JSON replies shared by the rollout server's handlers: a body with its
// status, an error in the API's error shape, and a request's JSON object
// body parsed under the nesting bound (answering 400 itself when it is not
// one).
#ifndef RLRT_SAMPLER_SERVER_HTTP_REPLY_H_
#define RLRT_SAMPLER_SERVER_HTTP_REPLY_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/status.h"

namespace httplib {
struct Response;
}  // namespace httplib

namespace rlrt {

void SendJson(httplib::Response& res, const nlohmann::json& body,
              int status = 200);
// The body's "code" is always the HTTP status sent.
void SendError(httplib::Response& res, const Status& status, int http);
// With the HTTP status that matches status.code().
void SendError(httplib::Response& res, const Status& status);
std::optional<nlohmann::json> ParseBody(const std::string& text,
                                        httplib::Response& res);

}  // namespace rlrt

#endif  // RLRT_SAMPLER_SERVER_HTTP_REPLY_H_
