// Ladder step 7: Encode from several threads at once gives the same ids as
// from one thread.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "models/tokenizer/test_data.h"
#include "models/tokenizer/tokenizer.h"

namespace rlrt {
namespace {

TEST(ConcurrencyTest, FourThreadsEncodeIdentically) {
  const Tokenizer* tok = testing::QwenTokenizer();
  ASSERT_NE(tok, nullptr);
  const nlohmann::json root = testing::ReadJsonOrFail(
      testing::VectorsDir() / "qwen3-derived-vectors.json");
  std::vector<std::string> texts;
  for (const auto& c : root["cases"]) texts.push_back(c["text"]);
  ASSERT_FALSE(texts.empty());
  std::vector<std::vector<int32_t>> expected;
  for (const std::string& t : texts) expected.push_back(tok->Encode(t));

  constexpr int kThreads = 4;
  constexpr int kRounds = 50;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        // Each thread walks the texts from a different start, so different
        // texts are encoded at the same moment.
        for (size_t k = 0; k < texts.size(); ++k) {
          const size_t i = (k + t * 7 + round) % texts.size();
          if (tok->Encode(texts[i]) != expected[i]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << t;
}

}  // namespace
}  // namespace rlrt
