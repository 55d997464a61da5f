// The rollout server over real HTTP on loopback: generation and chat round
// trips, streaming, weight reloads from checkpoints the project saved,
// failed reloads that keep the old weights serving, checksum and perturb,
// UpdateParams over HTTP equal to the in-process path, auth, and bad
// requests.
#include "sampler/server/rollout_server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/format.h"
#include "models/io/checkpoint.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "models/test_util.h"
#include "sampler/engine_test_util.h"
#include "tests/rollout_server_test_util.h"
#include "trainer_bridge/update_builder.h"
#include "trainer_bridge/update_stream_builder.h"

namespace rlrt {
namespace {

using nlohmann::json;
using testing::kStoriesDir;

TEST(RolloutServerTest, GenerateReturnsTheGoldenGreedyTokens) {
  Served s;
  json r = s.Post("/generate", kGreedyOnce);
  const std::vector<int32_t> golden = testing::GoldenContinuation();
  const auto ids = r["output_ids"].get<std::vector<int32_t>>();
  ASSERT_GE(golden.size(), ids.size());
  EXPECT_EQ(ids, std::vector<int32_t>(golden.begin(), golden.begin() + 24));
  EXPECT_EQ(r["meta_info"]["completion_tokens"], 24);
  EXPECT_EQ(r["meta_info"]["finish_reason"]["type"], "length");
  EXPECT_EQ(r["meta_info"]["weight_version"], 0);
  // The same request through the engine directly gives the same text.
  auto direct = s.engine->Generate(testing::GreedyText("Once upon a time", 24));
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(r["text"], direct->samples[0].text);

  // n > 1 with logprobs: one object per sample.
  json many = s.Post(
      "/generate",
      {{"input_ids", {1, 403, 407}},
       {"sampling_params", {{"n", 3}, {"max_new_tokens", 5}, {"seed", 4}}},
       {"return_logprob", true}});
  ASSERT_TRUE(many.is_array());
  ASSERT_EQ(many.size(), 3u);
  for (const json& one : many)
    EXPECT_EQ(one["meta_info"]["output_token_logprobs"].size(), 5u);
}

TEST(RolloutServerTest, OpenAiCompletionsChatModelsAndStreaming) {
  Served s;
  json models = s.Get("/v1/models");
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "rlrt");
  EXPECT_EQ(models["data"][0]["vocab_size"], s.engine->vocab_size());
  json c = s.Post("/v1/completions", {{"prompt", "Once upon a time"},
                                      {"max_tokens", 12},
                                      {"temperature", 0},
                                      {"n", 2}});
  EXPECT_EQ(c["object"], "text_completion");
  ASSERT_EQ(c["choices"].size(), 2u);
  EXPECT_EQ(c["usage"]["completion_tokens"].get<int>() +
                c["usage"]["prompt_tokens"].get<int>(),
            c["usage"]["total_tokens"].get<int>());
  // Greedy: both choices are the same text, which streaming reproduces.
  EXPECT_EQ(c["choices"][0]["text"], c["choices"][1]["text"]);
  std::string streamed, raw;
  auto res = s.client->Post("/v1/completions", {},
                            json{{"prompt", "Once upon a time"},
                                 {"max_tokens", 12},
                                 {"temperature", 0},
                                 {"stream", true}}
                                .dump(),
                            "application/json");
  ASSERT_TRUE(res);
  raw = res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  std::istringstream lines(raw);
  std::string line;
  int chunks = 0;
  bool done = false;
  while (std::getline(lines, line)) {
    if (line.rfind("data: ", 0) != 0) continue;
    if (line == "data: [DONE]") {
      done = true;
      continue;
    }
    json chunk = json::parse(line.substr(6));
    streamed += chunk["choices"][0]["text"].get<std::string>();
    ++chunks;
  }
  EXPECT_TRUE(done);
  EXPECT_GE(chunks, 1);
  EXPECT_EQ(streamed, c["choices"][0]["text"].get<std::string>());
}

TEST(RolloutServerTest, ChatGoesThroughTheChatTemplate) {
  EngineOptions o;
  o.model.preset = "qwen3-tiny";
  o.model.load_format = "dummy";
  o.tokenizer_dir = RLRT_SHARED_DIR "/models/qwen3-tokenizer";
  o.max_total_tokens = 4096;
  Served s({}, o);
  json c = s.Post("/v1/chat/completions",
                  {{"messages", {{{"role", "user"}, {"content", "你是谁"}}}},
                   {"max_tokens", 6},
                   {"temperature", 0},
                   {"chat_template_kwargs", {{"enable_thinking", false}}}});
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["choices"][0]["message"]["role"], "assistant");
  // The prompt the engine saw is the rendered template.
  GenerateRequest direct;
  direct.messages = {{"user", "你是谁", std::nullopt}};
  direct.chat_options.enable_thinking = false;
  direct.sampling.temperature = 0;
  direct.stop.max_new_tokens = 6;
  auto d = s.engine->Generate(direct);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(c["usage"]["prompt_tokens"], d->prompt_tokens);
  EXPECT_EQ(c["choices"][0]["message"]["content"], d->samples[0].text);
}

TEST(RolloutServerTest, ReloadFromASavedCheckpointServesExactlyIt) {
  const auto dir = SavePerturbedStories("reload");
  Served s;
  const json before = s.Get("/admin/weights_checksum");
  json started = s.Post(
      "/admin/reload_weights",
      {{"model_path", dir.string()}, {"load_format", "safetensors"}}, 202);
  EXPECT_EQ(started["status"], "loading");
  json status = s.WaitForReload();
  ASSERT_EQ(status["state"], "done") << status.dump();
  EXPECT_EQ(status["version"], 1);
  const json after = s.Get("/admin/weights_checksum");
  EXPECT_NE(after["content_hash"], before["content_hash"]);
  EXPECT_EQ(after["weight_version"], 1);

  // An engine built from the checkpoint generates exactly what the
  // reloaded server does.
  auto mesh = testing::MakeMesh(1, "fresh");
  EngineOptions o = testing::StoriesOptions();
  o.model.model_dir = dir.string();
  auto fresh = testing::MakeEngine(o, mesh.get());
  auto want = fresh->Generate(testing::GreedyText("Once upon a time", 24));
  ASSERT_TRUE(want.ok());
  json got = s.Post("/generate", kGreedyOnce);
  EXPECT_EQ(got["output_ids"].get<std::vector<int32_t>>(),
            want->samples[0].token_ids);
  EXPECT_EQ(got["meta_info"]["weight_version"], 1);
  EXPECT_EQ(fresh->WeightsChecksum()->float64_sum,
            after["float64_sum"].get<double>());
  std::filesystem::remove_all(dir);
}

TEST(RolloutServerTest, FailedReloadsKeepTheOldWeightsServing) {
  const auto good = SavePerturbedStories("good");
  // Truncated: the safetensors file loses its last bytes.
  const auto truncated = TempDir("truncated");
  for (const auto& entry : std::filesystem::directory_iterator(good))
    std::filesystem::copy_file(entry.path(),
                               truncated / entry.path().filename());
  const auto st = truncated / "model.safetensors";
  std::filesystem::resize_file(st, std::filesystem::file_size(st) - 100);
  // Wrong shapes: a config with a wider hidden size.
  const auto wrong = TempDir("wrong");
  for (const auto& entry : std::filesystem::directory_iterator(good))
    std::filesystem::copy_file(entry.path(), wrong / entry.path().filename());
  {
    std::ifstream in(good / "config.json");
    json config = json::parse(in);
    config["hidden_size"] = config["hidden_size"].get<int>() * 2;
    std::ofstream(wrong / "config.json") << config.dump();
  }

  Served s;
  const json before = s.Get("/admin/weights_checksum");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/nonexistent/model", "/nonexistent/model"},
      {truncated.string(), "model.safetensors"},
      {wrong.string(), "shape"},
  };
  for (const auto& [path, needle] : cases) {
    s.Post("/admin/reload_weights", {{"model_path", path}}, 202);
    json status = s.WaitForReload();
    EXPECT_EQ(status["state"], "failed") << path;
    ASSERT_TRUE(status.contains("error")) << path;
    EXPECT_NE(status["error"].get<std::string>().find(needle),
              std::string::npos)
        << status["error"];
    EXPECT_EQ(s.Get("/admin/weights_checksum")["content_hash"],
              before["content_hash"]);
    json r = s.Post("/generate", kGreedyOnce);
    const std::vector<int32_t> golden = testing::GoldenContinuation();
    EXPECT_EQ(r["output_ids"].get<std::vector<int32_t>>(),
              std::vector<int32_t>(golden.begin(), golden.begin() + 24));
  }
  EXPECT_EQ(s.Get("/admin/reload_status")["reloads_failed"], 3);
  // Bad reload requests are refused before anything starts.
  s.Post("/admin/reload_weights", {{"model_path", 3}}, 400);
  s.Post("/admin/reload_weights",
         {{"model_path", good.string()}, {"load_format", "pickle"}}, 400);
  for (const auto& d : {good, truncated, wrong}) std::filesystem::remove_all(d);
}

TEST(RolloutServerTest, ChecksumAndPerturbRoundTrip) {
  Served s;
  const json c0 = s.Get("/admin/weights_checksum");
  json p = s.Post("/admin/perturb_weights",
                  {{"seed", 5}, {"scale", 0.01}, {"num_leaves", 3}});
  EXPECT_EQ(p["before"]["content_hash"], c0["content_hash"]);
  EXPECT_NE(p["after"]["content_hash"], c0["content_hash"]);
  // The perturbed weights have their own version, which results report.
  EXPECT_EQ(p["weight_version"], 1);
  EXPECT_EQ(s.Post("/generate", kGreedyOnce)["meta_info"]["weight_version"], 1);
  const json c1 = s.Get("/admin/weights_checksum");
  EXPECT_EQ(c1["content_hash"], p["after"]["content_hash"]);
  EXPECT_DOUBLE_EQ(
      p["checksum_delta"].get<double>(),
      c1["float64_sum"].get<double>() - c0["float64_sum"].get<double>());
  // Same perturbation on an identical engine gives the same result.
  Served t;
  json q = t.Post("/admin/perturb_weights",
                  {{"seed", 5}, {"scale", 0.01}, {"num_leaves", 3}});
  EXPECT_EQ(q["after"], p["after"]);
  s.Post("/admin/perturb_weights", {{"scale", -1}}, 400);
  s.Post("/admin/perturb_weights", {{"seed", "x"}}, 400);
}

TEST(RolloutServerTest, UpdateParamsOverHttpEqualsInProcess) {
  LoadedModel model = testing::LoadStories();
  ASSERT_TRUE(Perturb(model.weights, 3, 0.02, 1 << 20, nullptr).ok());
  proto::UpdateParams update;
  ASSERT_TRUE(BuildUpdateParams(model.weights, 7,
                                {.include_content_hash = true,
                                 .flush_cache = true,
                                 .return_checksums = false},
                                nullptr, &update)
                  .ok());
  const std::string body = update.SerializeAsString();
  Served http, local;
  auto res =
      http.client->Post("/admin/update_params", body, "application/x-protobuf");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json reply = json::parse(res->body);
  EXPECT_TRUE(reply["ok"].get<bool>());
  EXPECT_EQ(reply["version"], 7);
  ASSERT_TRUE(local.engine->UpdateParams(update).ok());
  EXPECT_EQ(http.Get("/admin/weights_checksum")["float64_sum"].get<double>(),
            local.engine->WeightsChecksum()->float64_sum);
  json a = http.Post("/generate", kGreedyOnce);
  auto b = local.engine->Generate(testing::GreedyText("Once upon a time", 24));
  EXPECT_EQ(a["output_ids"].get<std::vector<int32_t>>(),
            b->samples[0].token_ids);
  EXPECT_EQ(a["meta_info"]["weight_version"], 7);

  // The same version again, a truncated message, and garbage are refused;
  // nothing changes.
  const json sums = http.Get("/admin/weights_checksum");
  res =
      http.client->Post("/admin/update_params", body, "application/x-protobuf");
  EXPECT_EQ(res->status, 409) << res->body;
  res =
      http.client->Post("/admin/update_params", body.substr(0, body.size() / 2),
                        "application/x-protobuf");
  EXPECT_EQ(res->status, 400) << res->body;
  EXPECT_NE(res->body.find("truncated"), std::string::npos) << res->body;
  res = http.client->Post("/admin/update_params", "garbage",
                          "application/x-protobuf");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(http.Get("/admin/weights_checksum"), sums);
}

// A stream over HTTP, message by message as a sender would post them: the
// chunks stage without changing what is served, the commit applies the
// weights; a broken stream, garbage and an unauthenticated chunk change
// nothing.
TEST(RolloutServerTest, StreamedUpdateOverHttpStagesThenCommits) {
  LoadedModel model = testing::LoadStories();
  ASSERT_TRUE(Perturb(model.weights, 3, 0.02, 1 << 20, nullptr).ok());
  auto stream =
      SerializeUpdateStream(model.weights, 5, {.chunk_bytes = 100000}, nullptr);
  ASSERT_TRUE(stream.ok()) << stream.status();
  ASSERT_GT(stream->chunks.size(), 5u);
  RolloutServerOptions o;
  o.admin_token = "s3cret";
  Served s(o);
  const httplib::Headers auth = {{"Authorization", "Bearer s3cret"}};
  auto post = [&](const std::string& path, const std::string& body,
                  const httplib::Headers& headers) {
    auto res = s.client->Post(("/admin/update_stream/" + path).c_str(), headers,
                              body, "application/x-protobuf");
    EXPECT_TRUE(res) << path;
    return res ? std::make_pair(res->status, res->body)
               : std::make_pair(0, std::string());
  };
  const json before = s.Get("/admin/weights_checksum", 200, auth);
  const json greedy_before = s.Post("/generate", kGreedyOnce);

  // Broken: chunk 1 skipped. 400, the stream is dropped, nothing changed.
  EXPECT_EQ(post("begin", stream->begin, auth).first, 200);
  EXPECT_EQ(post("chunk", stream->chunks[0], auth).first, 200);
  auto [code, body] = post("chunk", stream->chunks[2], auth);
  EXPECT_EQ(code, 400) << body;
  EXPECT_NE(body.find("chunk 1 expected"), std::string::npos) << body;
  EXPECT_EQ(post("commit", stream->commit, auth).first, 409);
  EXPECT_EQ(s.Get("/admin/weights_checksum", 200, auth), before);

  // Without the token, nothing is read; garbage is refused alone.
  EXPECT_EQ(post("begin", stream->begin, {}).first, 401);
  EXPECT_EQ(post("begin", "garbage", auth).first, 400);
  EXPECT_EQ(post("chunk", stream->chunks[0], {}).first, 401);

  // A whole stream: staged, then committed.
  EXPECT_EQ(post("begin", stream->begin, auth).first, 200);
  for (size_t i = 0; i < stream->chunks.size(); ++i) {
    auto [c, b] = post("chunk", stream->chunks[i], auth);
    ASSERT_EQ(c, 200) << b;
    EXPECT_EQ(json::parse(b)["chunks_received"], i + 1);
  }
  EXPECT_EQ(s.Post("/generate", kGreedyOnce)["output_ids"],
            greedy_before["output_ids"]);
  const json status = s.Get("/admin/update_stream/status", 200, auth);
  EXPECT_EQ(status["active"], true);
  EXPECT_EQ(status["bytes_received"], model.weights.total_bytes());
  std::tie(code, body) = post("commit", stream->commit, auth);
  ASSERT_EQ(code, 200) << body;
  const json reply = json::parse(body);
  EXPECT_EQ(reply["version"], 5);
  EXPECT_EQ(reply["content_hash"], HexU64(ContentHash(model.weights)));
  EXPECT_EQ(s.Get("/admin/weights_checksum", 200, auth)["content_hash"],
            HexU64(ContentHash(model.weights)));
  EXPECT_EQ(s.Post("/generate", kGreedyOnce)["meta_info"]["weight_version"], 5);
  const json after = s.Get("/admin/update_stream/status", 200, auth);
  EXPECT_EQ(after["streams_committed"], 1);
  EXPECT_EQ(after["streams_failed"], 1);
  auto metrics = s.client->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find(
                "rlrt_update_streams_total{outcome=\"committed\"} 1\n"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(
      metrics->body.find("rlrt_update_streams_total{outcome=\"failed\"} 1\n"),
      std::string::npos);
  // A sender giving up on a stream it began.
  auto v6 =
      SerializeUpdateStream(model.weights, 6, {.chunk_bytes = 100000}, nullptr);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(post("begin", v6->begin, auth).first, 200);
  s.Post("/admin/update_stream/abort", {{"version", 6}}, 200, auth);
  s.Post("/admin/update_stream/abort", {{"version", 6}}, 404, auth);
  s.Post("/admin/update_stream/abort", {{"version", "6"}}, 400, auth);
  EXPECT_EQ(s.Get("/admin/update_stream/status", 200, auth)["active"], false);
}

TEST(RolloutServerTest, AdminNeedsTheBearerToken) {
  RolloutServerOptions o;
  o.admin_token = "s3cret";
  Served s(o);
  s.Get("/admin/weights_checksum", 401);
  s.Get("/admin/weights_checksum", 401, {{"Authorization", "Bearer nope"}});
  s.Get("/admin/weights_checksum", 200, {{"Authorization", "Bearer s3cret"}});
  s.Post("/admin/perturb_weights", {{"seed", 1}}, 401);
  // Ordinary endpoints need no token.
  s.Get("/health");
  // A non-loopback host without a token keeps admin off.
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  RolloutServerOptions open;
  open.host = "0.0.0.0";
  auto server = RolloutServer::Create(s.engine.get(), nullptr, open);
  ASSERT_TRUE(server.ok());
  EXPECT_FALSE((*server)->admin_enabled());
}

TEST(RolloutServerTest, BadRequestsGetClearErrorsAndTheServerGoesOn) {
  RolloutServerOptions o;
  o.max_json_body_bytes = 4096;
  Served s(o);
  auto post = [&](const std::string& path, const std::string& body) {
    auto res = s.client->Post(path.c_str(), body, "application/json");
    EXPECT_TRUE(res);
    return res ? std::make_pair(res->status, res->body)
               : std::make_pair(-1, std::string());
  };
  const std::vector<std::tuple<std::string, std::string, int>> cases = {
      {"/generate", "{", 400},
      {"/generate", "[1,2]", 400},
      {"/generate", R"({"text": 5})", 400},
      {"/generate", R"({"text": "a", "input_ids": [1]})", 400},
      {"/generate", R"({"input_ids": [1, 99999999]})", 400},
      {"/generate", R"({"text": "a", "sampling_params": {"temperature": -1}})",
       400},
      {"/generate", R"({"text": "a", "sampling_params": {"n": 0}})", 400},
      {"/v1/completions", R"({"prompt": ["a", "b"]})", 400},
      {"/v1/chat/completions", R"({"messages": []})", 400},
      {"/v1/chat/completions", R"({"messages": [{"role": "x"}]})", 400},
      {"/generate", std::string(5000, ' '), 413},
  };
  for (const auto& [path, body, want] : cases) {
    auto [status, text] = post(path, body);
    EXPECT_EQ(status, want)
        << path << " " << body.substr(0, 60) << " -> " << text;
    if (status == 400) {
      json error = json::parse(text, nullptr, false);
      ASSERT_FALSE(error.is_discarded()) << text;
      EXPECT_FALSE(error["error"]["message"].get<std::string>().empty());
    }
  }
  EXPECT_EQ(s.client->Get("/nope")->status, 404);
  // Still serving.
  s.Post("/generate", kGreedyOnce);
  const std::string metrics = s.client->Get("/metrics")->body;
  EXPECT_NE(metrics.find("rlrt_request_errors_total{endpoint=\"generate\"}"),
            std::string::npos);
  EXPECT_NE(metrics.find("rlrt_weight_version 0"), std::string::npos);
}

TEST(RolloutServerTest, AClientLeavingMidStreamAbortsItsRequest) {
  Served s;
  int chunks = 0;
  httplib::Client client("127.0.0.1", s.server->port());
  httplib::Request req;
  req.method = "POST";
  req.path = "/generate";
  req.set_header("Content-Type", "application/json");
  req.body = json{
      {"input_ids", {1}},
      {"sampling_params", {{"max_new_tokens", 400}, {"ignore_eos", true}}},
      {"stream",
       true}}.dump();
  // Returning false after a few chunks closes the connection.
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
    return ++chunks < 3;
  };
  httplib::Response res;
  httplib::Error error;
  client.send(req, res, error);
  EXPECT_GE(chunks, 1);
  // The request is aborted and its pages come back.
  for (int i = 0; i < 200; ++i) {
    json load = s.Get("/get_load");
    if (load["running_requests"] == 0 && load["kv_tokens_used"].get<int>() == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  json load = s.Get("/get_load");
  EXPECT_EQ(load["running_requests"], 0);
  EXPECT_EQ(s.engine->Stats().scheduler.aborted_requests, 1);
}

}  // namespace
}  // namespace rlrt

namespace rlrt {
namespace {

// A checkpoint directory whose dummy weights take a while to build (the
// Qwen3-0.6B shape), so a reload of it is still loading when the next
// request arrives; its structure differs from stories260K, so it then fails.
std::filesystem::path SlowDummyModel() {
  const auto dir = TempDir("slow");
  std::ofstream(dir / "config.json")
      << json{{"model_type", "qwen3"},       {"vocab_size", 151936},
              {"hidden_size", 1024},         {"intermediate_size", 3072},
              {"num_hidden_layers", 8},      {"num_attention_heads", 16},
              {"num_key_value_heads", 8},    {"head_dim", 128},
              {"rms_norm_eps", 1e-6},        {"rope_theta", 1000000.0},
              {"tie_word_embeddings", true}, {"max_position_embeddings", 40960},
              {"torch_dtype", "float32"}};
  return dir;
}

TEST(RolloutServerTest, RequestsDuringAReloadAreServedOrRefusedAsConfigured) {
  const auto slow = SlowDummyModel();
  for (bool reject : {false, true}) {
    RolloutServerOptions o;
    o.reject_during_reload = reject;
    Served s(o);
    s.Post("/admin/reload_weights",
           {{"model_path", slow.string()}, {"load_format", "dummy"}}, 202);
    ASSERT_EQ(s.Get("/admin/reload_status")["state"], "loading");
    if (reject) {
      json r = s.Post("/generate", kGreedyOnce, 503);
      EXPECT_NE(r["error"]["message"].get<std::string>().find("reload"),
                std::string::npos);
    } else {
      // Served by the old weights, and the response says so.
      json r = s.Post("/generate", kGreedyOnce);
      EXPECT_EQ(r["meta_info"]["weight_version"], 0);
    }
    json status = s.WaitForReload();
    EXPECT_EQ(status["state"], "failed");  // Another structure.
    s.Post("/generate", kGreedyOnce);      // Serving either way.
  }
  std::filesystem::remove_all(slow);
}

}  // namespace
}  // namespace rlrt

namespace rlrt {
namespace {

// build/bin/rollout_server --num_servers=2: two engines on disjoint devices,
// each on its own port, stopped cleanly by SIGTERM.
TEST(RolloutServerBinaryTest, TwoServersOnDisjointDevicesAndPorts) {
  const int base = 20000 + getpid() % 20000;
  const std::string command =
      std::string(ROLLOUT_SERVER_PATH) +
      " --num_servers=2 --num_virtual_devices=2 --base_port=" +
      std::to_string(base) + " --model_dir=" + kStoriesDir +
      " 2>/dev/null & echo $!";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[4096];
  ASSERT_NE(fgets(buf, sizeof(buf), pipe), nullptr);
  const int pid = std::atoi(buf);
  std::vector<json> ready;
  while (ready.size() < 2 && fgets(buf, sizeof(buf), pipe) != nullptr) {
    json line = json::parse(buf, nullptr, false);
    if (!line.is_discarded() && line["phase"] == "server_ready")
      ready.push_back(line);
  }
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_EQ(ready[0]["port"], base);
  EXPECT_EQ(ready[1]["port"], base + 1);
  EXPECT_NE(ready[0]["devices"], ready[1]["devices"]);
  for (const json& r : ready) {
    httplib::Client client("127.0.0.1", r["port"].get<int>());
    auto health = client.Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    auto sums = client.Get("/admin/weights_checksum");
    ASSERT_TRUE(sums);
    EXPECT_EQ(sums->status, 200);
  }
  kill(pid, SIGTERM);
  pclose(pipe);
}

}  // namespace
}  // namespace rlrt
