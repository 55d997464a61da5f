// The /generate wire format as the trainer's RolloutClient speaks it: a
// GenerateRequest as the server's JSON body, and the server's reply back as
// a GenerateResult (every field checked; a malformed reply is DataLoss).
#ifndef RLRT_TRAINER_BRIDGE_REMOTE_GENERATE_WIRE_H_
#define RLRT_TRAINER_BRIDGE_REMOTE_GENERATE_WIRE_H_

#include <nlohmann/json.hpp>
#include <string_view>

#include "base/status.h"
#include "sampler/request.h"

namespace rlrt {

// What RolloutClient can send: text or input_ids (not chat messages, not a
// streaming callback), n in [1, 1024], valid sampling and stop settings.
Status ValidateForGenerate(const GenerateRequest& r);

// The POST /generate body for `r`.
nlohmann::json GenerateBody(const GenerateRequest& r);

// The reply to `request` (one sample object, or an array of n).
StatusOr<GenerateResult> ReadGenerateReply(const nlohmann::json& reply,
                                           const GenerateRequest& request);

// The value of `key` in `object`, or null when it is absent or JSON null.
const nlohmann::json* JsonMember(const nlohmann::json& object,
                                 std::string_view key);

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_REMOTE_GENERATE_WIRE_H_
