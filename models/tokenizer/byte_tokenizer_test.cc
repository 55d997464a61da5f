#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "models/tokenizer/stream_decoder.h"
#include "models/tokenizer/tokenizer.h"

namespace rlrt {
namespace {

std::unique_ptr<Tokenizer> Make(int64_t vocab_size) {
  auto tok = MakeByteTokenizer(vocab_size);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

TEST(ByteTokenizerTest, IdsAreBytes) {
  auto tok = Make(300);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 300);
  EXPECT_EQ(tok->Encode("Hi \xFF"), (std::vector<int32_t>{'H', 'i', ' ', 255}));
  EXPECT_EQ(tok->Encode(std::string("\0", 1)), (std::vector<int32_t>{0}));
  EXPECT_EQ(tok->Encode(""), std::vector<int32_t>{});
}

TEST(ByteTokenizerTest, SpecialTokens) {
  auto tok = Make(260);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->bos_id(), 256);
  EXPECT_EQ(tok->eos_id(), 257);
  EXPECT_EQ(tok->pad_id(), 258);
  EXPECT_EQ(tok->IdToToken(259), "<|reserved_259|>");
  EXPECT_TRUE(tok->IsSpecial(259));
  EXPECT_FALSE(tok->IsSpecial(65));
  EXPECT_EQ(tok->TokenToId("<|eos|>"), 257);
  EncodeOptions with_bos;
  with_bos.add_special_tokens = true;
  EXPECT_EQ(tok->Encode("a<|eos|>", with_bos),
            (std::vector<int32_t>{256, 'a', 257}));
  // Reserved tokens are never matched in text.
  EXPECT_EQ(tok->Encode("<|reserved_259|>").size(), 16u);
  EncodeOptions plain;
  plain.parse_special = false;
  EXPECT_EQ(tok->Encode("<|eos|>", plain).size(), 7u);
  auto text = tok->Decode(std::vector<int32_t>{256, 'o', 'k', 257, 259},
                          /*skip_special_tokens=*/true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "ok");
  text = tok->Decode(std::vector<int32_t>{'o', 257});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "o<|eos|>");
}

TEST(ByteTokenizerTest, AnyBytesRoundTrip) {
  auto tok = Make(512);
  ASSERT_NE(tok, nullptr);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  EncodeOptions plain;
  plain.parse_special = false;
  for (int i = 0; i < 200; ++i) {
    std::string text;
    for (int j = 0; j < i; ++j) text.push_back(static_cast<char>(byte(rng)));
    const std::vector<int32_t> ids = tok->Encode(text, plain);
    ASSERT_EQ(ids.size(), text.size());
    auto back = tok->Decode(ids);
    ASSERT_TRUE(back.ok());
    ASSERT_EQ(*back, text);
    StreamDecoder stream(*tok);
    std::string streamed;
    for (int32_t id : ids) streamed += *stream.Next(id);
    streamed += stream.Flush();
    ASSERT_EQ(streamed, text);
  }
}

TEST(ByteTokenizerTest, RefusesTooSmallOrHugeVocabularies) {
  EXPECT_FALSE(MakeByteTokenizer(258).ok());
  EXPECT_FALSE(MakeByteTokenizer(-1).ok());
  EXPECT_FALSE(MakeByteTokenizer(int64_t{1} << 40).ok());
  EXPECT_TRUE(MakeByteTokenizer(259).ok());
  auto tok = Make(259);
  ASSERT_NE(tok, nullptr);
  EXPECT_FALSE(tok->Decode(std::vector<int32_t>{259}).ok());
}

}  // namespace
}  // namespace rlrt
