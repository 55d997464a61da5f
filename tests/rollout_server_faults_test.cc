// Faults injected into a running rollout server over HTTP: a request storm
// far larger than the KV pool, checkpoints deleted or swapped while a reload
// reads them, and reloads that name their weight version. Whatever happens,
// the server keeps serving whole weights of one checkpoint, never a mix.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <vector>

#include "base/json_limits.h"
#include "models/leaf_checksum.h"
#include "tests/rollout_server_test_util.h"
#include "trainer_bridge/update_builder.h"

namespace rlrt {
namespace {

namespace fs = std::filesystem;

std::string HashOf(const fs::path& checkpoint) {
  auto loaded = LoadCheckpoint(checkpoint, nullptr);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return "";
  char text[19];
  std::snprintf(text, sizeof(text), "0x%016llx",
                static_cast<unsigned long long>(ContentHash(loaded->leaves)));
  return text;
}

// 32 clients at once against a pool of 10 pages where each request needs 4:
// at most two run, the rest wait; all finish with the golden tokens; the
// pool never holds more than its pages and is whole again at the end; a
// request larger than the pool is refused with a reason.
// 60,000 nested arrays used to overflow the server's stack (as a chat
// message's content, without a token, with any content type). Every JSON
// body is now refused at parse time with a 400 naming the limit (other
// content types get 415 unread), and the server goes
// on serving the same weights.
TEST(RolloutServerFaultsTest, DeeplyNestedJsonIsRefusedAndTheServerLives) {
  Served s;
  const uint64_t hash = s.engine->WeightsChecksum()->content_hash;
  const std::string deep = std::string(60000, '[') + std::string(60000, ']');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": )" + deep + "}]}"},
      {"/v1/completions", R"({"prompt": )" + deep + "}"},
      {"/generate", R"({"text": "a", "sampling_params": )" + deep + "}"},
      {"/generate", deep},
  };
  for (const auto& [path, body] : cases) {
    auto res = s.client->Post(path.c_str(), body, "application/json");
    ASSERT_TRUE(res) << path << ": the server died";
    EXPECT_EQ(res->status, 400) << path;
    EXPECT_NE(res->body.find("nested deeper than " +
                             std::to_string(kMaxJsonDepth) + " levels"),
              std::string::npos)
        << res->body;
    // Any other content type is refused before the body is read.
    res = s.client->Post(path.c_str(), body, "text/plain");
    ASSERT_TRUE(res) << path << ": the server died";
    EXPECT_EQ(res->status, 415) << path;
  }
  EXPECT_EQ(s.client->Get("/health")->status, 200);
  EXPECT_EQ(s.engine->WeightsChecksum()->content_hash, hash);
  s.Post("/generate", kGreedyOnce);
}

TEST(RolloutServerFaultsTest, AStormLargerThanTheKvPoolWaitsAndFinishes) {
  EngineOptions o = testing::StoriesOptions();
  o.max_total_tokens = 160;
  Served s({}, o);
  const std::vector<int32_t> golden = testing::GoldenContinuation();
  const json request = {{"text", "Once upon a time"},
                        {"sampling_params",
                         {{"temperature", 0},
                          {"max_new_tokens", static_cast<int>(golden.size())},
                          {"ignore_eos", true}}}};
  const int64_t pool = s.Get("/get_load")["kv_tokens_total"].get<int64_t>();
  ASSERT_EQ(pool, 160);

  constexpr int kClients = 32;
  std::atomic<int> ok{0}, done{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, port = s.server->port()] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(300, 0);
      auto res = c.Post("/generate", request.dump(), "application/json");
      if (res && res->status == 200) {
        const json r = json::parse(res->body, nullptr, false);
        if (r.is_object() &&
            r["output_ids"].get<std::vector<int32_t>>() == golden)
          ok.fetch_add(1);
      }
      done.fetch_add(1);
    });
  }
  int64_t most_used = 0, most_running = 0, most_waiting = 0;
  while (done.load() < kClients) {
    const json load = s.Get("/get_load");
    most_used = std::max(most_used, load["kv_tokens_used"].get<int64_t>());
    most_running =
        std::max(most_running, load["running_requests"].get<int64_t>());
    most_waiting =
        std::max(most_waiting, load["waiting_requests"].get<int64_t>());
    EXPECT_EQ(load["kv_tokens_total"], pool);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients);
  EXPECT_LE(most_used, pool);
  EXPECT_LE(most_running, 2);
  EXPECT_GT(most_waiting, 0);  // The storm did queue.

  // Idle: nothing running or waiting; pages held only by the prefix cache
  // (freed on demand), so a request that needs the whole pool still fits.
  const json idle = s.Get("/get_load");
  EXPECT_EQ(idle["running_requests"], 0);
  EXPECT_EQ(idle["waiting_requests"], 0);
  json whole = request;
  whole["sampling_params"]["max_new_tokens"] = 140;
  EXPECT_EQ(s.Post("/generate", whole)["meta_info"]["completion_tokens"], 140);

  // Larger than the whole pool: refused at once, with the reason.
  whole["sampling_params"]["max_new_tokens"] = 300;
  const json refused = s.Post("/generate", whole, 400);
  EXPECT_NE(refused.dump().find("KV"), std::string::npos) << refused.dump();
  EXPECT_EQ(s.Post("/generate", request)["output_ids"], golden);
}

// The checkpoint directory is deleted right after each reload starts. The
// mapping keeps a file that was already open readable, so a reload either
// completes with exactly that checkpoint or fails naming what is missing;
// either way the server serves whole weights afterwards.
TEST(RolloutServerFaultsTest, ACheckpointDeletedMidReloadNeverHalfApplies) {
  Served s;
  int done = 0, failed = 0;
  for (int i = 0; i < 6; ++i) {
    const fs::path dir = SavePerturbedStories("vanish" + std::to_string(i),
                                              /*seed=*/100 + i);
    const std::string want = HashOf(dir);
    const json before = s.Get("/admin/weights_checksum");
    // On odd rounds the directory goes before the reload can start reading.
    if (i % 2 == 1) fs::remove_all(dir);
    s.Post("/admin/reload_weights", {{"model_path", dir.string()}}, 202);
    fs::remove_all(dir);
    const json status = s.WaitForReload();
    const json after = s.Get("/admin/weights_checksum");
    if (status["state"] == "done") {
      ++done;
      EXPECT_EQ(after["content_hash"], want) << i;
      EXPECT_EQ(after["weight_version"],
                before["weight_version"].get<int>() + 1);
    } else {
      ++failed;
      ASSERT_EQ(status["state"], "failed") << status.dump();
      EXPECT_NE(status["error"].get<std::string>().find(dir.string()),
                std::string::npos)
          << status.dump();
      EXPECT_EQ(after["content_hash"], before["content_hash"]) << i;
      EXPECT_EQ(after["weight_version"], before["weight_version"]);
    }
    json r = s.Post("/generate", kGreedyOnce);
    EXPECT_EQ(r["meta_info"]["completion_tokens"], 24) << i;
    EXPECT_EQ(r["meta_info"]["weight_version"], after["weight_version"]);
  }
  EXPECT_GE(failed, 3);  // At least the rounds deleted before the start.
  EXPECT_EQ(done + failed, 6);
}

// A checkpoint swapped for another by rename while it is read (how our
// writers replace one): the server ends up with one of the two, whole.
TEST(RolloutServerFaultsTest, ACheckpointSwappedMidReloadGivesOneWholeModel) {
  Served s;
  const fs::path a = SavePerturbedStories("swap_a", 201);
  const fs::path b = SavePerturbedStories("swap_b", 202);
  const std::string hash_a = HashOf(a), hash_b = HashOf(b);
  ASSERT_NE(hash_a, hash_b);
  const fs::path live = TempDir("swap_live");
  fs::remove_all(live);
  for (int i = 0; i < 6; ++i) {
    fs::remove_all(live);
    fs::copy(i % 2 ? b : a, live);
    const fs::path next = TempDir("swap_next");
    fs::remove_all(next);
    fs::copy(i % 2 ? a : b, next);
    s.Post("/admin/reload_weights", {{"model_path", live.string()}}, 202);
    // Swap the files in place under the reader.
    for (const char* f : {"config.json", "model.safetensors"})
      fs::rename(next / f, live / f);
    const json status = s.WaitForReload();
    ASSERT_EQ(status["state"], "done") << status.dump();
    const std::string got =
        s.Get("/admin/weights_checksum")["content_hash"].get<std::string>();
    EXPECT_TRUE(got == hash_a || got == hash_b) << got;
    fs::remove_all(next);
  }
  for (const fs::path& d : {a, b, live}) fs::remove_all(d);
}

// weight_version in a reload: the weights carry it; the version in force
// may be re-read (same version), an older one is refused before anything
// is read, and a bad value is a 400.
TEST(RolloutServerFaultsTest, AReloadCarriesTheWeightVersionItNames) {
  const fs::path dir = SavePerturbedStories("versioned");
  const std::string want = HashOf(dir);
  Served s;
  s.Post("/admin/reload_weights",
         {{"model_path", dir.string()}, {"weight_version", 5}}, 202);
  json status = s.WaitForReload();
  ASSERT_EQ(status["state"], "done") << status.dump();
  EXPECT_EQ(status["version"], 5);
  EXPECT_EQ(s.Get("/admin/weights_checksum")["content_hash"], want);

  // Re-reading the checkpoint of the version in force is allowed.
  s.Post("/admin/reload_weights",
         {{"model_path", dir.string()}, {"weight_version", 5}}, 202);
  ASSERT_EQ(s.WaitForReload()["state"], "done");
  EXPECT_EQ(s.Get("/get_load")["weight_version"], 5);

  // Perturbed weights are other weights: they get a version of their own
  // (6), so version 5 can no longer name them; the repair re-reads the
  // checkpoint under a newer version.
  const json perturbed =
      s.Post("/admin/perturb_weights", {{"seed", 1}, {"scale", 0.01}});
  EXPECT_EQ(perturbed["weight_version"], 6);
  EXPECT_EQ(s.Get("/get_load")["weight_version"], 6);
  EXPECT_NE(s.Get("/admin/weights_checksum")["content_hash"], want);
  s.Post("/admin/reload_weights",
         {{"model_path", dir.string()}, {"weight_version", 5}}, 409);
  s.Post("/admin/reload_weights",
         {{"model_path", dir.string()}, {"weight_version", 7}}, 202);
  status = s.WaitForReload();
  ASSERT_EQ(status["state"], "done") << status.dump();
  EXPECT_EQ(s.Get("/admin/weights_checksum")["content_hash"], want);
  EXPECT_EQ(s.Get("/get_load")["weight_version"], 7);

  const json stale =
      s.Post("/admin/reload_weights",
             {{"model_path", dir.string()}, {"weight_version", 4}}, 409);
  EXPECT_NE(stale.dump().find("older than the version in force"),
            std::string::npos)
      << stale.dump();
  s.Post("/admin/reload_weights",
         {{"model_path", dir.string()}, {"weight_version", "6"}}, 400);
  s.Post("/admin/reload_weights",
         {{"model_path", dir.string()}, {"weight_version", -1}}, 400);
  EXPECT_EQ(s.Get("/get_load")["weight_version"], 7);
  // Without one, the version in force + 1.
  s.Post("/admin/reload_weights", {{"model_path", dir.string()}}, 202);
  EXPECT_EQ(s.WaitForReload()["version"], 8);
  fs::remove_all(dir);
}

// UpdateParams over HTTP that are well-formed protobuf but wrong inside: a
// leaf whose payload was cut mid-leaf, and a payload that no longer matches
// its content hash. Refused with the reason; the weights stay byte for
// byte; the server goes on serving the golden tokens.
TEST(RolloutServerFaultsTest, UpdatesCutMidLeafOrWithAWrongHashChangeNothing) {
  LoadedModel model = testing::LoadStories();
  ASSERT_TRUE(Perturb(model.weights, 3, 0.02, 1 << 20, nullptr).ok());
  proto::UpdateParams update;
  ASSERT_TRUE(BuildUpdateParams(model.weights, 1,
                                {.include_content_hash = true,
                                 .flush_cache = true,
                                 .return_checksums = false},
                                nullptr, &update)
                  .ok());
  Served s;
  const json before = s.Get("/admin/weights_checksum");
  const std::vector<int32_t> golden = testing::GoldenContinuation();

  proto::UpdateParams cut = update;
  std::string* data = cut.mutable_leaves(0)->mutable_data();
  data->resize(data->size() / 2);
  proto::UpdateParams wrong_hash = update;
  (*wrong_hash.mutable_leaves(1)->mutable_data())[0] ^= 0x01;
  const std::vector<std::pair<proto::UpdateParams, std::string>> cases = {
      {cut, "bytes"}, {wrong_hash, "content hash"}};
  for (const auto& [bad, needle] : cases) {
    auto res = s.client->Post("/admin/update_params", bad.SerializeAsString(),
                              "application/x-protobuf");
    ASSERT_TRUE(res);
    EXPECT_GE(res->status, 400) << res->body;
    EXPECT_LT(res->status, 500) << res->body;
    EXPECT_NE(res->body.find(needle), std::string::npos) << res->body;
    EXPECT_EQ(s.Get("/admin/weights_checksum"), before);
    const json r = s.Post("/generate", kGreedyOnce);
    EXPECT_EQ(r["output_ids"].get<std::vector<int32_t>>(),
              std::vector<int32_t>(golden.begin(), golden.begin() + 24));
    EXPECT_EQ(r["meta_info"]["weight_version"], 0);
  }
  // The intact update still applies afterwards.
  auto res = s.client->Post("/admin/update_params", update.SerializeAsString(),
                            "application/x-protobuf");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_NE(s.Get("/admin/weights_checksum")["content_hash"],
            before["content_hash"]);
}

}  // namespace
}  // namespace rlrt
