// RolloutClient and rollout_admin against two real rollout servers on
// loopback, each with its own stories260K engine: generation equal to the
// in-process engine's, load spreading, retries when a server goes away,
// weight broadcasts and reloads that reach every server, and bad URLs.
#include "trainer_bridge/remote/rollout_client.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "models/io/checkpoint.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "sampler/engine_test_util.h"
#include "sampler/server/rollout_server.h"
#include "tests/rollout_client_test_util.h"
#include "trainer_bridge/update_builder.h"

namespace rlrt {
namespace {

using nlohmann::json;
using Policy = RolloutClientOptions::Policy;

// Every server's content hash, in server order; empty on any failure.
std::vector<std::string> Hashes(RolloutClient& client) {
  std::vector<std::string> hashes;
  for (const ServerResult& r : client.Checksums()) {
    EXPECT_TRUE(r.status.ok()) << r.status;
    if (!r.status.ok()) return {};
    hashes.push_back(r.reply["content_hash"].get<std::string>());
  }
  return hashes;
}

// Waits for every handle; all must succeed.
void WaitAll(const std::vector<RequestHandle>& handles, int64_t want_tokens) {
  for (const RequestHandle& h : handles) {
    StatusOr<GenerateResult> result = h.Wait();
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->id, h.id());
    EXPECT_EQ(result->completion_tokens, want_tokens);
  }
}

TEST(RolloutClientTest, GenerateEqualsTheInProcessEngine) {
  Fleet f;
  auto client = f.Client();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->urls(), f.urls);

  // Greedy from text: the golden continuation.
  auto greedy = client->Generate(testing::GreedyText("Once upon a time", 24));
  ASSERT_TRUE(greedy.ok()) << greedy.status();
  const std::vector<int32_t> golden = testing::GoldenContinuation();
  ASSERT_EQ(greedy->samples.size(), 1u);
  const SampleOutput& g = greedy->samples[0];
  EXPECT_EQ(g.token_ids,
            std::vector<int32_t>(golden.begin(), golden.begin() + 24));
  auto direct =
      f.engines[0]->Generate(testing::GreedyText("Once upon a time", 24));
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(g.text, direct->samples[0].text);
  EXPECT_EQ(g.finish_reason, FinishReason::kLength);
  EXPECT_EQ(g.weight_versions, std::vector<uint64_t>(24, 0));
  EXPECT_TRUE(g.logprobs.empty());
  EXPECT_EQ(greedy->prompt_tokens, direct->prompt_tokens);
  EXPECT_EQ(greedy->completion_tokens, 24);
  EXPECT_TRUE(greedy->prompt_ids.empty());  // The server does not send them.
  EXPECT_GT(greedy->e2e_seconds, 0);

  // Sampled, a group of 3 with a seed: the same tokens, logprobs and seeds.
  const GenerateRequest request = Sampled(11, 3);
  auto remote = client->Generate(request);
  ASSERT_TRUE(remote.ok()) << remote.status();
  auto local = f.engines[1]->Generate(request);
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(remote->prompt_ids, request.input_ids);
  EXPECT_EQ(remote->prompt_tokens, 3);
  ASSERT_EQ(remote->samples.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const SampleOutput& a = remote->samples[i];
    const SampleOutput& b = local->samples[i];
    EXPECT_EQ(a.token_ids, b.token_ids) << i;
    EXPECT_EQ(a.logprobs, b.logprobs) << i;  // Bit for bit.
    EXPECT_EQ(a.text, b.text) << i;
    EXPECT_EQ(a.seed, b.seed) << i;
    EXPECT_EQ(a.finish_reason, b.finish_reason) << i;
    EXPECT_EQ(a.weight_versions, b.weight_versions) << i;
  }
  // The samples' own streams: not all alike.
  std::set<std::vector<int32_t>> distinct;
  for (const SampleOutput& s : remote->samples) distinct.insert(s.token_ids);
  EXPECT_GT(distinct.size(), 1u);

  // A stop token: finish_reason and the matched token come back.
  GenerateRequest stop = testing::GreedyText("Once upon a time", 24);
  stop.stop.stop_token_ids = {golden[5]};
  auto stopped = client->Generate(stop);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->samples[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(stopped->samples[0].matched_stop_token, golden[5]);

  // Bad requests: refused by Submit itself, or by the server (a 4xx, which
  // is not retried).
  GenerateRequest bad = Sampled(1);
  bad.sampling.temperature = -1;
  EXPECT_EQ(client->Submit(bad).status().code(), StatusCode::kInvalidArgument);
  bad = Sampled(1);
  bad.messages = {{"user", "hi", std::nullopt}};
  EXPECT_EQ(client->Submit(bad).status().code(), StatusCode::kInvalidArgument);
  bad = Sampled(1);
  bad.input_ids = {1, 99999999};
  auto refused = client->Generate(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("HTTP 400"), std::string::npos)
      << refused.status();
  EXPECT_EQ(client->retries(), 0);
}

TEST(RolloutClientTest, ConcurrentRequestsSpreadOverBothServers) {
  Fleet f;
  auto client = f.Client(Policy::kLeastLoaded);
  ASSERT_NE(client, nullptr);
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 40; ++i) {
    auto h = client->Submit(Sampled(100 + i));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(*h);
  }
  WaitAll(handles, 12);
  f.WaitUntilFinished(40);
  EXPECT_GT(f.Finished(0), 0);
  EXPECT_GT(f.Finished(1), 0);
  EXPECT_EQ(f.Finished(0) + f.Finished(1), 40);

  // Round-robin alternates exactly (unless a connection failed and was
  // retried on the other server: the servers' listen backlog is small, so a
  // burst of connections can be reset).
  auto rr = f.Client(Policy::kRoundRobin);
  const int64_t before0 = f.Finished(0), before1 = f.Finished(1);
  handles.clear();
  for (int i = 0; i < 20; ++i) handles.push_back(*rr->Submit(Sampled(i)));
  WaitAll(handles, 12);
  f.WaitUntilFinished(60);
  EXPECT_EQ(f.Finished(0) - before0 + f.Finished(1) - before1, 20);
  if (rr->retries() == 0) {
    EXPECT_EQ(f.Finished(0) - before0, 10);
    EXPECT_EQ(f.Finished(1) - before1, 10);
  }

  // Idle again.
  for (const ServerResult& r : client->Loads()) {
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.reply["running_requests"], 0);
    EXPECT_EQ(r.reply["waiting_requests"], 0);
  }
}

TEST(RolloutClientTest, RequestsGoOnWhenAServerStops) {
  Fleet f;
  auto round_robin = f.Client(Policy::kRoundRobin);
  auto least_loaded = f.Client(Policy::kLeastLoaded);
  auto single_try = f.Client(Policy::kRoundRobin, /*max_attempts=*/1);
  ASSERT_TRUE(round_robin && least_loaded && single_try);
  f.servers[1]->Stop();

  std::vector<RequestHandle> handles;
  for (int i = 0; i < 10; ++i) {
    handles.push_back(*round_robin->Submit(Sampled(i)));
    handles.push_back(*least_loaded->Submit(Sampled(50 + i)));
  }
  WaitAll(handles, 12);
  f.WaitUntilFinished(20);
  EXPECT_GT(round_robin->retries(), 0);
  EXPECT_EQ(f.Finished(0), 20);
  EXPECT_EQ(f.Finished(1), 0);

  // A seeded sample is the same wherever it runs.
  auto retried = round_robin->Generate(Sampled(7));
  auto direct = f.engines[1]->Generate(Sampled(7));
  ASSERT_TRUE(retried.ok() && direct.ok());
  EXPECT_EQ(retried->samples[0].token_ids, direct->samples[0].token_ids);

  // Without retries, the request sent to the stopped server fails, naming it.
  auto first = single_try->Generate(Sampled(1));
  auto second = single_try->Generate(Sampled(2));
  ASSERT_NE(first.ok(), second.ok());
  const Status& failed = first.ok() ? second.status() : first.status();
  EXPECT_EQ(failed.code(), StatusCode::kUnavailable);
  EXPECT_NE(failed.message().find(f.urls[1]), std::string::npos) << failed;
  EXPECT_EQ(single_try->retries(), 0);
}

TEST(RolloutClientTest, BroadcastUpdateReachesEveryServerOnce) {
  Fleet f;
  auto client = f.Client();
  ASSERT_NE(client, nullptr);
  LoadedModel trainer = testing::LoadStories();
  ASSERT_TRUE(Perturb(trainer.weights, 3, 0.02, 1 << 20, nullptr).ok());
  BuildOptions build;
  build.include_content_hash = true;  // Each server verifies the payload.
  build.flush_cache = true;
  proto::UpdateParams update;
  ASSERT_TRUE(
      BuildUpdateParams(trainer.weights, 1, build, nullptr, &update).ok());
  const std::string body = update.SerializeAsString();
  const std::string want = HashText(ContentHash(trainer.weights));
  const std::vector<std::string> initial = Hashes(*client);
  ASSERT_EQ(initial.size(), 2u);
  EXPECT_NE(initial[0], want);

  std::vector<ServerResult> results =
      client->BroadcastUpdate(WireUpdate::Single(1, body));
  ASSERT_EQ(results.size(), 2u);
  for (int i = 0; i < kServers; ++i) {
    EXPECT_EQ(results[i].url, f.urls[i]);
    EXPECT_TRUE(results[i].status.ok()) << results[i].status;
    EXPECT_EQ(results[i].reply["version"], 1);
  }
  EXPECT_EQ(Hashes(*client), std::vector<std::string>(2, want));
  // Samples now carry the new version.
  auto after = client->Generate(Sampled(3));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->samples[0].weight_versions, std::vector<uint64_t>(12, 1));

  // The same version again is refused by each server; nothing changes.
  for (const ServerResult& r :
       client->BroadcastUpdate(WireUpdate::Single(1, body))) {
    EXPECT_EQ(r.status.code(), StatusCode::kFailedPrecondition) << r.status;
    EXPECT_NE(r.status.message().find("HTTP 409"), std::string::npos);
    EXPECT_EQ(r.reply["ok"], false);
    EXPECT_EQ(r.reply["version"], 1);
  }
  EXPECT_EQ(Hashes(*client), std::vector<std::string>(2, want));
}

TEST(RolloutClientTest, ReloadWithWaitServesTheCheckpoint) {
  LoadedModel model = testing::LoadStories();
  ASSERT_TRUE(Perturb(model.weights, 9, 0.05, 1 << 20, nullptr).ok());
  const auto dir = std::filesystem::temp_directory_path() /
                   ("rlrt_client_reload_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(SaveCheckpoint(model.weights, model.config, dir).ok());
  const std::string want = HashText(ContentHash(model.weights));

  Fleet f;
  auto client = f.Client();
  ASSERT_NE(client, nullptr);
  for (const ServerResult& r : client->Reload(dir.string(), "safetensors",
                                              /*wait=*/true)) {
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.reply["state"], "done");
    EXPECT_EQ(r.reply["version"], 1);
  }
  EXPECT_EQ(Hashes(*client), std::vector<std::string>(2, want));
  EXPECT_EQ(f.EngineHash(0), want);

  // A failed reload says why, per server, and keeps the weights.
  for (const ServerResult& r :
       client->Reload("/nonexistent/ckpt", "safetensors", true)) {
    EXPECT_FALSE(r.status.ok());
    EXPECT_NE(r.status.message().find("/nonexistent/ckpt"), std::string::npos)
        << r.status;
    EXPECT_EQ(r.reply["state"], "failed");
  }
  EXPECT_EQ(Hashes(*client), std::vector<std::string>(2, want));
  std::filesystem::remove_all(dir);
}

TEST(RolloutClientTest, CreateRefusesBadUrlsAndDeadServers) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "no rollout server"},
      {{"ftp://x"}, "is not http://"},
      {{"http://127.0.0.1"}, "has no port"},
      {{"http://127.0.0.1:99999"}, "bad port"},
      {{"http://127.0.0.1:80/generate"}, "has a path"},
  };
  for (const auto& [urls, needle] : cases) {
    RolloutClientOptions options;
    options.urls = urls;
    auto client = RolloutClient::Create(options);
    ASSERT_FALSE(client.ok()) << needle;
    EXPECT_EQ(client.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(client.status().message().find(needle), std::string::npos)
        << client.status();
  }
  // Nothing listens on port 1.
  RolloutClientOptions options;
  options.urls = {"http://127.0.0.1:1/"};
  auto dead = RolloutClient::Create(options);
  ASSERT_FALSE(dead.ok());
  EXPECT_EQ(dead.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(dead.status().message().find("http://127.0.0.1:1/health"),
            std::string::npos)
      << dead.status();
}

TEST(RolloutClientTest, DestroyingTheClientFailsWhatItHasNotFinished) {
  Fleet f;
  RolloutClientOptions options;
  options.urls = f.urls;
  options.worker_threads = 2;
  auto client = RolloutClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  GenerateRequest long_request = Sampled(1);
  long_request.stop.max_new_tokens = 500;
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 10; ++i)
    handles.push_back(*(*client)->Submit(long_request));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // Two calls are in progress (they are cut off), eight are queued.
  client->reset();
  for (const RequestHandle& h : handles) {
    ASSERT_TRUE(h.done());
    EXPECT_EQ(h.Wait().status().code(), StatusCode::kAborted);
  }
}

// ---- rollout_admin ---------------------------------------------------------

struct AdminRun {
  int exit_code = -1;
  std::vector<json> lines;  // The JSON lines it printed.
  std::string output;       // stdout and stderr.
};

// Runs rollout_admin with `args`, its stderr merged into its stdout.
AdminRun RunAdmin(const std::string& args) {
  AdminRun r;
  const std::string command =
      std::string(ROLLOUT_ADMIN_PATH) + " " + args + " 2>&1";
  if (FILE* pipe = popen(command.c_str(), "r")) {
    std::array<char, 4096> buf;
    for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe)) > 0;)
      r.output.append(buf.data(), n);
    const int status = pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("url")) r.lines.push_back(std::move(j));
  }
  return r;
}

TEST(RolloutAdminTest, ChecksumPerturbAndErrors) {
  Fleet f;
  const std::string base = "--base_url=" + f.urls[0] + "," + f.urls[1];
  auto checksums = [&] {
    AdminRun r = RunAdmin(base + " checksum");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.lines.size(), 2u) << r.output;
    std::vector<std::string> hashes;
    for (size_t i = 0; i < r.lines.size(); ++i) {
      EXPECT_EQ(r.lines[i]["url"], f.urls[i]);
      EXPECT_EQ(r.lines[i]["ok"], true);
      hashes.push_back(r.lines[i]["reply"]["content_hash"].get<std::string>());
      EXPECT_EQ(hashes.back(), f.EngineHash(static_cast<int>(i)));
    }
    return hashes;
  };
  const std::vector<std::string> before = checksums();
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[0], before[1]);  // The same checkpoint.

  AdminRun perturb =
      RunAdmin(base + " perturb --seed=1 --scale=0.01 --num_leaves=2");
  ASSERT_EQ(perturb.exit_code, 0) << perturb.output;
  ASSERT_EQ(perturb.lines.size(), 2u);
  const std::vector<std::string> after = checksums();
  ASSERT_EQ(after.size(), 2u);
  for (int i = 0; i < kServers; ++i) {
    EXPECT_NE(after[i], before[i]);
    EXPECT_EQ(perturb.lines[i]["reply"]["after"]["content_hash"], after[i]);
  }
  EXPECT_EQ(after[0], after[1]);  // Same seed, same noise.

  AdminRun load = RunAdmin(base + " load");
  EXPECT_EQ(load.exit_code, 0) << load.output;
  EXPECT_EQ(load.lines.size(), 2u);

  AdminRun bad = RunAdmin(base + " frobnicate");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("unknown command \"frobnicate\""),
            std::string::npos)
      << bad.output;
  EXPECT_TRUE(bad.lines.empty());
  AdminRun none = RunAdmin(base);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("usage"), std::string::npos) << none.output;
  AdminRun bad_url = RunAdmin("--base_url=ftp://x checksum");
  EXPECT_EQ(bad_url.exit_code, 1);
  EXPECT_NE(bad_url.output.find("ftp://x"), std::string::npos);

  // A dead server gets a failed line of its own; the exit code says so.
  AdminRun partial =
      RunAdmin("--base_url=" + f.urls[0] + ",http://127.0.0.1:1 checksum");
  EXPECT_EQ(partial.exit_code, 1);
  ASSERT_EQ(partial.lines.size(), 2u) << partial.output;
  EXPECT_EQ(partial.lines[0]["ok"], true);
  EXPECT_EQ(partial.lines[1]["ok"], false);
  EXPECT_NE(partial.lines[1]["error"].get<std::string>().find("cannot connect"),
            std::string::npos);
}

}  // namespace
}  // namespace rlrt
