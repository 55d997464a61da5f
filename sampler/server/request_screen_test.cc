#include "sampler/server/request_screen.h"

#include <gtest/gtest.h>

namespace rlrt {
namespace {

ScreenPolicy Loopback() { return {"127.0.0.1", {}, {}}; }

TEST(HostNameTest, StripsPortAndBrackets) {
  EXPECT_EQ(HostName("LocalHost:30000"), "localhost");
  EXPECT_EQ(HostName("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(HostName("[::1]:8080"), "::1");
  EXPECT_EQ(HostName("::1"), "::1");
  EXPECT_EQ(HostName(" example.com:1 "), "example.com");
}

TEST(ScreenHostTest, LoopbackServerTakesOnlyLoopbackNames) {
  for (const char* ok : {"127.0.0.1:30000", "localhost:30000", "localhost",
                         "[::1]:30000", "127.0.0.2", ""})
    EXPECT_FALSE(ScreenHost(Loopback(), ok)) << ok;
  // A DNS-rebinding page names its own host.
  for (const char* bad : {"evil.example:30000", "10.0.0.1", "localhost.evil"}) {
    auto r = ScreenHost(Loopback(), bad);
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->http_status, 403);
    EXPECT_NE(r->message.find("--allowed_hosts"), std::string::npos);
  }
}

TEST(ScreenHostTest, AllowListAndSpecificAddresses) {
  ScreenPolicy proxied = Loopback();
  proxied.allowed_hosts = {"rollouts.internal"};
  EXPECT_FALSE(ScreenHost(proxied, "rollouts.internal:443"));
  EXPECT_TRUE(ScreenHost(proxied, "other.internal"));

  ScreenPolicy bound{"10.1.2.3", {}, {}};
  EXPECT_FALSE(ScreenHost(bound, "10.1.2.3:30000"));
  EXPECT_TRUE(ScreenHost(bound, "localhost:30000"));
  EXPECT_TRUE(ScreenHost(bound, "gpu-box:30000"));

  ScreenPolicy any{"0.0.0.0", {}, {}};
  EXPECT_FALSE(ScreenHost(any, "gpu-box:30000"));
  any.allowed_hosts = {"gpu-box"};
  EXPECT_FALSE(ScreenHost(any, "gpu-box:30000"));
  EXPECT_FALSE(ScreenHost(any, "localhost:30000"));
  EXPECT_TRUE(ScreenHost(any, "evil.example"));
}

TEST(ScreenOriginTest, OwnOriginOrNone) {
  const ScreenPolicy p = Loopback();
  EXPECT_FALSE(ScreenOrigin(p, "", "127.0.0.1:30000"));
  EXPECT_FALSE(ScreenOrigin(p, "http://127.0.0.1:30000", "127.0.0.1:30000"));
  EXPECT_FALSE(ScreenOrigin(p, "http://LOCALHOST:30000", "localhost:30000"));
  // A cross-site page, an opaque origin, and a rebinding page that is
  // same-origin with a Host this server does not answer to.
  EXPECT_TRUE(ScreenOrigin(p, "http://evil.example", "127.0.0.1:30000"));
  EXPECT_TRUE(ScreenOrigin(p, "null", "127.0.0.1:30000"));
  EXPECT_TRUE(
      ScreenOrigin(p, "http://evil.example:30000", "evil.example:30000"));
  EXPECT_TRUE(ScreenOrigin(p, "https://127.0.0.1:30000", "127.0.0.1:30000"));
  ScreenPolicy allowed = p;
  allowed.allowed_origins = {"http://dashboard.internal"};
  EXPECT_FALSE(
      ScreenOrigin(allowed, "http://dashboard.internal", "127.0.0.1:30000"));
  auto r = ScreenOrigin(p, std::string(500, 'o'), "127.0.0.1:30000");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->http_status, 403);
  EXPECT_LT(r->message.size(), 250u);  // The client's value is cut.
}

TEST(ScreenContentTypeTest, JsonAndProtobufOnly) {
  EXPECT_FALSE(ScreenContentType(BodyKind::kNone, "text/plain"));
  EXPECT_FALSE(ScreenContentType(BodyKind::kJson, "application/json"));
  EXPECT_FALSE(
      ScreenContentType(BodyKind::kJson, "Application/JSON; charset=utf-8"));
  EXPECT_FALSE(
      ScreenContentType(BodyKind::kProtobuf, "application/x-protobuf"));
  EXPECT_FALSE(
      ScreenContentType(BodyKind::kProtobuf, "application/octet-stream"));
  // What a browser may send cross-site without a preflight.
  for (const char* simple : {"text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x", ""}) {
    auto r = ScreenContentType(BodyKind::kJson, simple);
    ASSERT_TRUE(r) << simple;
    EXPECT_EQ(r->http_status, 415);
    EXPECT_TRUE(ScreenContentType(BodyKind::kProtobuf, simple)) << simple;
  }
  EXPECT_TRUE(ScreenContentType(BodyKind::kProtobuf, "application/json"));
}

}  // namespace
}  // namespace rlrt
