// Shared by the rollout server suites: one stories260K engine behind a
// server on a free loopback port, with JSON helpers, and perturbed
// checkpoints to reload.
#ifndef RLRT_TESTS_ROLLOUT_SERVER_TEST_UTIL_H_
#define RLRT_TESTS_ROLLOUT_SERVER_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "models/io/checkpoint.h"
#include "models/leaf_init.h"
#include "models/test_util.h"
#include "sampler/engine_test_util.h"
#include "sampler/server/rollout_server.h"

namespace rlrt {

using nlohmann::json;
using testing::kStoriesDir;

// One engine (stories260K) behind a server on a free loopback port.
struct Served {
  explicit Served(RolloutServerOptions options = {},
                  EngineOptions engine_options = testing::StoriesOptions()) {
    mesh = testing::MakeMesh(1, "rollout");
    engine = testing::MakeEngine(engine_options, mesh.get());
    options.port = 0;
    auto s = RolloutServer::Create(engine.get(), nullptr, options);
    EXPECT_TRUE(s.ok()) << s.status();
    server = std::move(s).value();
    EXPECT_TRUE(server->Start().ok());
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    client->set_read_timeout(60, 0);
  }

  json Post(const std::string& path, const json& body, int want = 200,
            const httplib::Headers& headers = {}) {
    auto res =
        client->Post(path.c_str(), headers, body.dump(), "application/json");
    EXPECT_TRUE(res) << path;
    if (!res) return json();
    EXPECT_EQ(res->status, want) << path << " " << res->body;
    return json::parse(res->body, nullptr, false);
  }
  json Get(const std::string& path, int want = 200,
           const httplib::Headers& headers = {}) {
    auto res = client->Get(path.c_str(), headers);
    EXPECT_TRUE(res) << path;
    if (!res) return json();
    EXPECT_EQ(res->status, want) << path << " " << res->body;
    return json::parse(res->body, nullptr, false);
  }
  // Polls /admin/reload_status until the reload ends.
  json WaitForReload() {
    // Generous: a sanitizer build loads a checkpoint many times slower.
    for (int i = 0; i < 12000; ++i) {
      json s = Get("/admin/reload_status");
      if (s["state"] == "done" || s["state"] == "failed") return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "reload did not finish";
    return json();
  }

  std::unique_ptr<Mesh> mesh;
  std::unique_ptr<SamplerEngine> engine;
  std::unique_ptr<RolloutServer> server;
  std::unique_ptr<httplib::Client> client;
};

inline const json kGreedyOnce = {
    {"text", "Once upon a time"},
    {"sampling_params",
     {{"temperature", 0}, {"max_new_tokens", 24}, {"ignore_eos", true}}}};

inline std::filesystem::path TempDir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("rlrt_server_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// stories260K with every weight perturbed, saved as a checkpoint (with the
// tokenizer files, so it is a complete model directory).
inline std::filesystem::path SavePerturbedStories(const std::string& name,
                                                  uint64_t seed = 9) {
  LoadedModel model = testing::LoadStories();
  EXPECT_TRUE(Perturb(model.weights, seed, 0.05, 1 << 20, nullptr).ok());
  const auto dir = TempDir(name);
  EXPECT_TRUE(SaveCheckpoint(model.weights, model.config, dir).ok());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    if (std::filesystem::exists(std::filesystem::path(kStoriesDir) / f))
      std::filesystem::copy_file(std::filesystem::path(kStoriesDir) / f,
                                 dir / f);
  return dir;
}

}  // namespace rlrt

#endif  // RLRT_TESTS_ROLLOUT_SERVER_TEST_UTIL_H_
