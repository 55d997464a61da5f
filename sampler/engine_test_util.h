// Shared set-up for engine tests: meshes, and engines over the real
// pretrained stories260K Llama (with its tokenizer and golden outputs from
// the original model in reference.json).
#ifndef RLRT_SAMPLER_ENGINE_TEST_UTIL_H_
#define RLRT_SAMPLER_ENGINE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/forward/model_source.h"
#include "models/test_util.h"
#include "partition/mesh.h"
#include "sampler/engine.h"

namespace rlrt::testing {

inline const std::string kStoriesDir = RLRT_SHARED_DIR "/models/stories260K";

inline EngineOptions StoriesOptions(std::string load_format = "safetensors") {
  EngineOptions o;
  o.model.model_dir = kStoriesDir;
  o.model.load_format = std::move(load_format);
  o.max_running_requests = 32;
  o.max_total_tokens = 8192;
  o.page_size = 16;
  o.context_length = 512;
  o.max_prefill_tokens = 256;
  return o;
}

inline std::unique_ptr<SamplerEngine> MakeEngine(const EngineOptions& options,
                                                 Mesh* mesh) {
  auto engine = SamplerEngine::Create(options, mesh);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? std::move(*engine) : nullptr;
}

// stories260K's weights as the trainer side would load them.
inline LoadedModel LoadStories() {
  auto loaded = LoadModel(ModelSource{.model_dir = kStoriesDir,
                                      .preset = "",
                                      .load_format = "auto",
                                      .seed = 0},
                          nullptr);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return std::move(*loaded);
}

inline nlohmann::json StoriesReference() {
  std::ifstream in(kStoriesDir + "/reference.json");
  return nlohmann::json::parse(in);
}

// The golden greedy continuation of "Once upon a time" (without the prompt).
inline std::vector<int32_t> GoldenContinuation() {
  const nlohmann::json ref = StoriesReference()["greedy_from_prompt"];
  std::vector<int32_t> ids = ref["ids"].get<std::vector<int32_t>>();
  const size_t prompt = ref["prompt_ids"].size();
  return std::vector<int32_t>(ids.begin() + prompt, ids.end());
}

inline GenerateRequest GreedyText(std::string text, int64_t max_new) {
  GenerateRequest r;
  r.text = std::move(text);
  r.sampling.temperature = 0;
  r.stop.max_new_tokens = max_new;
  r.ignore_eos = true;
  return r;
}

}  // namespace rlrt::testing

#endif  // RLRT_SAMPLER_ENGINE_TEST_UTIL_H_
