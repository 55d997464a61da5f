// Ladder step 8: the Llama 2 style tokenizer of stories260K against its
// reference.json (llama2.c semantics).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "models/tokenizer/test_data.h"
#include "models/tokenizer/tokenizer.h"

namespace rlrt {
namespace {

using testing::Ids;
using testing::StoriesDir;
using testing::StoriesTokenizer;

TEST(StoriesTest, EncodeWithBos) {
  const Tokenizer* tok = StoriesTokenizer();
  ASSERT_NE(tok, nullptr);
  const nlohmann::json ref =
      testing::ReadJsonOrFail(StoriesDir() / "reference.json");
  ASSERT_GE(ref["encode_with_bos"].size(), 5u);
  EncodeOptions with_bos;
  with_bos.add_special_tokens = true;
  for (const auto& c : ref["encode_with_bos"]) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(tok->Encode(text, with_bos), Ids(c["ids"])) << text;
    // Without special tokens, the same ids minus the BOS.
    std::vector<int32_t> no_bos = Ids(c["ids"]);
    no_bos.erase(no_bos.begin());
    EXPECT_EQ(tok->Encode(text), no_bos) << text;
  }
}

TEST(StoriesTest, PromptIdsOfTheGreedyRun) {
  const Tokenizer* tok = StoriesTokenizer();
  ASSERT_NE(tok, nullptr);
  const nlohmann::json ref =
      testing::ReadJsonOrFail(StoriesDir() / "reference.json");
  const auto& run = ref["greedy_from_prompt"];
  EncodeOptions with_bos;
  with_bos.add_special_tokens = true;
  EXPECT_EQ(tok->Encode(run["prompt"].get<std::string>(), with_bos),
            Ids(run["prompt_ids"]));
}

TEST(StoriesTest, DecodeGreedyRuns) {
  const Tokenizer* tok = StoriesTokenizer();
  ASSERT_NE(tok, nullptr);
  const nlohmann::json ref =
      testing::ReadJsonOrFail(StoriesDir() / "reference.json");
  for (const char* name : {"greedy_from_bos", "greedy_from_prompt"}) {
    const auto& run = ref[name];
    const std::vector<int32_t> ids = Ids(run["ids"]);
    ASSERT_EQ(ids.front(), 1) << name;  // BOS
    // The BOS is skipped and the first word's leading space dropped.
    auto text = tok->Decode(ids, /*skip_special_tokens=*/true);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, run["text"].get<std::string>()) << name;
  }
}

TEST(StoriesTest, VocabularyFacts) {
  const Tokenizer* tok = StoriesTokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->pad_id(), std::nullopt);
  EXPECT_EQ(tok->TokenToId("<0x0A>"), 13);
  EXPECT_TRUE(tok->IsSpecial(1));
  EXPECT_FALSE(tok->IsSpecial(13));
  // Byte-fallback ids decode to their byte; BOS keeps its text when not
  // skipped, and then the leading space is not at the start any more.
  auto text = tok->Decode(std::vector<int32_t>{1, 403, 13});
  ASSERT_TRUE(text.ok());
  auto word = tok->Decode(std::vector<int32_t>{403});
  ASSERT_TRUE(word.ok());
  EXPECT_EQ(*text, "<s> " + *word + "\n");
  EXPECT_FALSE(word->starts_with(" "));
}

}  // namespace
}  // namespace rlrt
