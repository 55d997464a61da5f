// Clients that misbehave on purpose, over raw TCP, for load runs and the
// hostile replay suite: heads and bodies that trickle in, hang-ups, bodies
// larger than any limit, endless header lines, deeply nested JSON. What a
// well-behaved client library would never send.
#ifndef RLRT_EXAMPLES_HOSTILE_CLIENTS_H_
#define RLRT_EXAMPLES_HOSTILE_CLIENTS_H_

#include <string>

namespace rlrt {

// A connection to an IPv4 `host`:`port` whose reads time out after
// `receive_timeout_seconds`; -1 when it cannot connect.
int ConnectRaw(const std::string& host, int port,
               double receive_timeout_seconds = 10);
// False once the server has closed or reset the connection.
bool SendRaw(int fd, const std::string& data);
// What the server sends until it closes or a read times out.
std::string ReadRaw(int fd);
// The status code of a raw HTTP/1.1 response, or -1.
int RawStatus(const std::string& response);

enum class HostileKind {
  kSlowBody,       // A JSON body, one byte every half second.
  kSlowHead,       // A request head, one byte every half second.
  kAbandoned,      // A long non-streaming generation, then a hang-up.
  kOversizeBody,   // Declares 3 GB to /admin/update_params, no token.
  kEndlessHeader,  // A header line of 8 MB with no end.
  kDeepJson,       // A chat message 60,000 arrays deep.
  kCount
};
const char* HostileKindName(HostileKind kind);

// Runs one action of `kind`; the status the server answered, or -1 when it
// gave none (an abandoned request never waits for one).
int RunHostileAction(HostileKind kind, const std::string& host, int port);

}  // namespace rlrt

#endif  // RLRT_EXAMPLES_HOSTILE_CLIENTS_H_
