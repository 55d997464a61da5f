#include "base/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>

namespace rlrt {
namespace {

TEST(StatusTest, DefaultIsOkWithoutMessage) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kOk);
  EXPECT_EQ(status.message(), "");
  EXPECT_EQ(status.ToString(), "OK");
  EXPECT_EQ(status, OkStatus());
}

TEST(StatusTest, EachConstructorSetsItsCodeAndName) {
  struct Case {
    Status status;
    StatusCode code;
    const char* name;
  };
  const Case cases[] = {
      {InvalidArgumentError("m"), StatusCode::kInvalidArgument,
       "INVALID_ARGUMENT"},
      {NotFoundError("m"), StatusCode::kNotFound, "NOT_FOUND"},
      {AlreadyExistsError("m"), StatusCode::kAlreadyExists, "ALREADY_EXISTS"},
      {OutOfRangeError("m"), StatusCode::kOutOfRange, "OUT_OF_RANGE"},
      {FailedPreconditionError("m"), StatusCode::kFailedPrecondition,
       "FAILED_PRECONDITION"},
      {ResourceExhaustedError("m"), StatusCode::kResourceExhausted,
       "RESOURCE_EXHAUSTED"},
      {DataLossError("m"), StatusCode::kDataLoss, "DATA_LOSS"},
      {UnavailableError("m"), StatusCode::kUnavailable, "UNAVAILABLE"},
      {AbortedError("m"), StatusCode::kAborted, "ABORTED"},
      {UnimplementedError("m"), StatusCode::kUnimplemented, "UNIMPLEMENTED"},
      {InternalError("m"), StatusCode::kInternal, "INTERNAL"},
  };
  for (const Case& c : cases) {
    EXPECT_FALSE(c.status.ok()) << c.name;
    EXPECT_EQ(c.status.code(), c.code) << c.name;
    EXPECT_EQ(c.status.message(), "m") << c.name;
    EXPECT_EQ(StatusCodeName(c.code), c.name);
    EXPECT_EQ(c.status.ToString(), std::string(c.name) + ": m");
  }
  EXPECT_EQ(StatusCodeName(StatusCode::kOk), "OK");
}

TEST(StatusTest, EqualityComparesCodeAndMessage) {
  EXPECT_EQ(NotFoundError("x"), NotFoundError("x"));
  EXPECT_FALSE(NotFoundError("x") == NotFoundError("y"));
  EXPECT_FALSE(NotFoundError("x") == InternalError("x"));
  EXPECT_FALSE(OkStatus() == InternalError(""));
}

TEST(StatusTest, WithContextPrefixesErrorsAndKeepsOk) {
  const Status status = NotFoundError("no file").WithContext("loading");
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "loading: no file");
  EXPECT_EQ(status.WithContext("outer").message(), "outer: loading: no file");
  EXPECT_TRUE(OkStatus().WithContext("ignored").ok());
  EXPECT_EQ(OkStatus().WithContext("ignored").message(), "");
}

TEST(StatusTest, StreamsAsToString) {
  std::ostringstream out;
  out << AbortedError("stop") << " " << OkStatus();
  EXPECT_EQ(out.str(), "ABORTED: stop OK");
}

TEST(StatusOrTest, HoldsValue) {
  StatusOr<int> value = 42;
  ASSERT_TRUE(value.ok());
  EXPECT_TRUE(value.status().ok());
  EXPECT_EQ(value.value(), 42);
  EXPECT_EQ(*value, 42);
  *value = 7;
  EXPECT_EQ(value.value(), 7);

  StatusOr<std::string> text = "abc";  // Converting constructor.
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->size(), 3u);
}

TEST(StatusOrTest, HoldsError) {
  StatusOr<int> error = OutOfRangeError("too big");
  EXPECT_FALSE(error.ok());
  EXPECT_EQ(error.status(), OutOfRangeError("too big"));
}

TEST(StatusOrTest, MovesOutMoveOnlyValues) {
  StatusOr<std::unique_ptr<int>> pointer = std::make_unique<int>(5);
  ASSERT_TRUE(pointer.ok());
  std::unique_ptr<int> owned = std::move(pointer).value();
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(*owned, 5);
}

Status FailIf(bool fail, int* steps) {
  ++*steps;
  if (fail) return DataLossError("corrupt");
  return OkStatus();
}

Status TwoSteps(bool fail_first, int* steps) {
  RETURN_IF_ERROR(FailIf(fail_first, steps));
  RETURN_IF_ERROR(FailIf(false, steps));
  return OkStatus();
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtFirstError) {
  int steps = 0;
  EXPECT_EQ(TwoSteps(true, &steps), DataLossError("corrupt"));
  EXPECT_EQ(steps, 1);
  steps = 0;
  EXPECT_TRUE(TwoSteps(false, &steps).ok());
  EXPECT_EQ(steps, 2);
}

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError(std::to_string(x) + " is odd");
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status QuarterIsPositive(int x) {
  RETURN_IF_ERROR(Quarter(x));  // Works on StatusOr too.
  return OkStatus();
}

TEST(StatusMacrosTest, AssignOrReturnPropagates) {
  StatusOr<int> ok = Quarter(12);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  EXPECT_EQ(Quarter(7).status(), InvalidArgumentError("7 is odd"));
  EXPECT_EQ(Quarter(6).status(), InvalidArgumentError("3 is odd"));
  EXPECT_TRUE(QuarterIsPositive(8).ok());
  EXPECT_EQ(QuarterIsPositive(10), InvalidArgumentError("5 is odd"));
}

}  // namespace
}  // namespace rlrt
