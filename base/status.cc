#include "base/status.h"

namespace rlrt {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case StatusCode::kDataLoss:
      return "DATA_LOSS";
    case StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case StatusCode::kAborted:
      return "ABORTED";
    case StatusCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case StatusCode::kInternal:
      return "INTERNAL";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string message(context);
  message += ": ";
  message += message_;
  return Status(code_, std::move(message));
}

#define RLRT_DEFINE_ERROR(Name, Code) \
  Status Name(std::string message) { return Status(Code, std::move(message)); }
RLRT_DEFINE_ERROR(InvalidArgumentError, StatusCode::kInvalidArgument)
RLRT_DEFINE_ERROR(NotFoundError, StatusCode::kNotFound)
RLRT_DEFINE_ERROR(AlreadyExistsError, StatusCode::kAlreadyExists)
RLRT_DEFINE_ERROR(OutOfRangeError, StatusCode::kOutOfRange)
RLRT_DEFINE_ERROR(FailedPreconditionError, StatusCode::kFailedPrecondition)
RLRT_DEFINE_ERROR(ResourceExhaustedError, StatusCode::kResourceExhausted)
RLRT_DEFINE_ERROR(DataLossError, StatusCode::kDataLoss)
RLRT_DEFINE_ERROR(UnavailableError, StatusCode::kUnavailable)
RLRT_DEFINE_ERROR(AbortedError, StatusCode::kAborted)
RLRT_DEFINE_ERROR(UnimplementedError, StatusCode::kUnimplemented)
RLRT_DEFINE_ERROR(InternalError, StatusCode::kInternal)
#undef RLRT_DEFINE_ERROR

std::ostream& operator<<(std::ostream& os, const Status& status) {
  return os << status.ToString();
}

}  // namespace rlrt
