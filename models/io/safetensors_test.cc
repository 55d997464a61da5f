#include "models/io/safetensors.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/io/io_test_util.h"

namespace rlrt {
namespace {

using testing::BuildSafetensors;
using testing::FloatBytes;
using testing::RawTensor;
using testing::ReadBytes;
using testing::ReadU64;
using testing::TempDir;
using testing::U64Bytes;
using testing::WriteBytes;

std::span<const std::byte> AsBytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

std::string ToString(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

size_t CountFiles(const std::filesystem::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator(dir)) {
    ++n;
  }
  return n;
}

TEST(SafetensorsTest, WriterFollowsTheFormat) {
  TempDir dir;
  const std::string a = FloatBytes({1, 2, 3, 4, 5, 6});
  // BF16 1, 2, 3, 4, 5.
  const std::string b_bytes("\x80\x3f\x00\x40\x40\x40\x80\x40\xa0\x40", 10);
  const std::vector<SafetensorsTensorData> tensors = {
      {"z.first", DType::kF32, {2, 3}, AsBytes(a)},
      {"a.second", DType::kBF16, {5}, AsBytes(b_bytes)},
      {"m.empty", DType::kF16, {0, 4}, {}},
  };
  const auto path = dir.path() / "t.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}}).ok());

  const std::string file = ReadBytes(path);
  const uint64_t n = ReadU64(file, 0);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(file.size(), 8 + n + 24 + 10);
  const std::string header = file.substr(8, n);
  // Any padding is trailing spaces after the closing brace.
  const size_t close = header.find_last_of('}');
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos);
  EXPECT_LT(header.size() - close - 1, 8u);
  const auto json = nlohmann::ordered_json::parse(header);
  std::vector<std::string> keys;
  for (const auto& [k, v] : json.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"__metadata__", "z.first",
                                            "a.second", "m.empty"}));
  EXPECT_EQ(json["__metadata__"]["format"], "pt");
  EXPECT_EQ(json["z.first"]["dtype"], "F32");
  EXPECT_EQ(json["z.first"]["shape"], nlohmann::ordered_json({2, 3}));
  EXPECT_EQ(json["z.first"]["data_offsets"], nlohmann::ordered_json({0, 24}));
  EXPECT_EQ(json["a.second"]["dtype"], "BF16");
  EXPECT_EQ(json["a.second"]["data_offsets"], nlohmann::ordered_json({24, 34}));
  EXPECT_EQ(json["m.empty"]["shape"], nlohmann::ordered_json({0, 4}));
  EXPECT_EQ(json["m.empty"]["data_offsets"], nlohmann::ordered_json({34, 34}));
  EXPECT_EQ(file.substr(8 + n), a + b_bytes);
  // Only the file itself: the temporary was renamed, not left behind.
  EXPECT_EQ(CountFiles(dir.path()), 1u);
}

TEST(SafetensorsTest, ReaderSeesWhatWasWritten) {
  TempDir dir;
  const std::string a = FloatBytes({1.5f, -2.0f});
  const std::string b = FloatBytes({7.0f});
  const std::vector<SafetensorsTensorData> tensors = {
      {"second", DType::kF32, {1, 2}, AsBytes(a)},
      {"first", DType::kF32, {1}, AsBytes(b)},
  };
  const auto path = dir.path() / "t.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"k", "v"}}).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->tensors().size(), 2u);
  // Data order, which is the order written.
  EXPECT_EQ(file->tensors()[0].name, "second");
  EXPECT_EQ(file->tensors()[1].name, "first");
  const SafetensorsTensor* t = file->Find("second");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::kF32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(t->NumElements(), 2);
  EXPECT_EQ(ToString(t->data), a);
  EXPECT_EQ(ToString(file->Find("first")->data), b);
  EXPECT_EQ(file->Find("third"), nullptr);
  EXPECT_EQ(file->metadata(), (std::map<std::string, std::string>{{"k", "v"}}));
  // Moving keeps the spans valid (the mapping does not move).
  SafetensorsFile moved = std::move(file).value();
  EXPECT_EQ(ToString(moved.Find("second")->data), a);
}

TEST(SafetensorsTest, WriterRefusesBadInputAndWritesNothing) {
  TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  WriteBytes(path, "old contents");
  const std::string four = FloatBytes({1});
  struct Case {
    const char* what;
    std::vector<SafetensorsTensorData> tensors;
    std::map<std::string, std::string> metadata;
    const char* message_part;
  };
  const std::vector<Case> cases = {
      {"duplicate",
       {{"x", DType::kF32, {1}, AsBytes(four)},
        {"x", DType::kF32, {1}, AsBytes(four)}},
       {},
       "twice"},
      {"reserved name",
       {{"__metadata__", DType::kF32, {1}, AsBytes(four)}},
       {},
       "__metadata__"},
      {"empty name", {{"", DType::kF32, {1}, AsBytes(four)}}, {}, "named"},
      {"size mismatch",
       {{"x", DType::kF32, {2}, AsBytes(four)}},
       {},
       "needs 8 bytes, got 4"},
      {"negative dim", {{"x", DType::kF32, {-1}, {}}}, {}, "negative"},
      {"bad utf8 metadata", {}, {{"k", "\xff"}}, "UTF-8"},
  };
  for (const Case& c : cases) {
    Status s = WriteSafetensors(path, c.tensors, c.metadata);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.what << ": " << s;
    EXPECT_NE(s.message().find(c.message_part), std::string::npos)
        << c.what << ": " << s;
    EXPECT_EQ(ReadBytes(path), "old contents") << c.what;
    EXPECT_EQ(CountFiles(dir.path()), 1u) << c.what;
  }
}

TEST(SafetensorsTest, WriterReplacesAnExistingFile) {
  TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  WriteBytes(path, "old contents");
  const std::string four = FloatBytes({3});
  const std::vector<SafetensorsTensorData> tensors = {
      {"x", DType::kF32, {1}, AsBytes(four)}};
  ASSERT_TRUE(WriteSafetensors(path, tensors, {}).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE(file->metadata().empty());
  EXPECT_EQ(ToString(file->Find("x")->data), four);
}

TEST(SafetensorsTest, ReadsUnpaddedHeaders) {
  // Padding is a convention; a header of any length is valid, and then the
  // data (and each tensor) may sit at any address.
  TempDir dir;
  const std::string header =
      R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_NE(header.size() % 4, 0u);
  const std::string data = FloatBytes({0.25f, -8.0f});
  const auto path = dir.path() / "t.safetensors";
  WriteBytes(path, U64Bytes(header.size()) + header + data);
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(ToString(file->Find("x")->data), data);
}

struct BadFile {
  const char* what;
  std::string bytes;
  StatusCode code;
  const char* message_part;
};

std::string WithHeader(const std::string& header, const std::string& data) {
  return U64Bytes(header.size()) + header + data;
}

TEST(SafetensorsTest, ReaderRefusesCorruptFiles) {
  const std::string eight = FloatBytes({1, 2});
  const std::vector<BadFile> cases = {
      {"empty", "", StatusCode::kDataLoss, "too short"},
      {"seven bytes", std::string(7, '\0'), StatusCode::kDataLoss, "too short"},
      {"absurd header", U64Bytes(uint64_t{1} << 40) + "{}",
       StatusCode::kDataLoss, "exceeds the limit"},
      {"header past end", U64Bytes(100) + "{}", StatusCode::kDataLoss,
       "runs past the end of the file"},
      {"max u64 header", U64Bytes(~uint64_t{0}), StatusCode::kDataLoss,
       "exceeds the limit"},
      {"not json", WithHeader("{\"x\": ", ""), StatusCode::kDataLoss,
       "not valid JSON"},
      {"array", WithHeader("[1, 2]", ""), StatusCode::kDataLoss,
       "not a JSON object"},
      {"entry not object", WithHeader(R"({"x": 3})", ""), StatusCode::kDataLoss,
       "tensor 'x': entry is not an object"},
      {"unknown dtype",
       WithHeader(R"({"w": {"dtype": "I64", "shape": [1],
                   "data_offsets": [0, 8]}})",
                  eight),
       StatusCode::kInvalidArgument, "tensor 'w': unsupported dtype 'I64'"},
      {"negative dim",
       WithHeader(R"({"w": {"dtype": "F32", "shape": [-2],
                   "data_offsets": [0, 8]}})",
                  eight),
       StatusCode::kDataLoss, "tensor 'w': negative dim"},
      {"float dim",
       WithHeader(R"({"w": {"dtype": "F32", "shape": [2.0],
                   "data_offsets": [0, 8]}})",
                  eight),
       StatusCode::kDataLoss, "non-integer dim"},
      {"shape mismatch",
       WithHeader(R"({"w": {"dtype": "F32", "shape": [3],
                   "data_offsets": [0, 8]}})",
                  eight),
       StatusCode::kDataLoss, "needs 12 bytes but data_offsets [0,8] span 8"},
      {"past data",
       WithHeader(R"({"w": {"dtype": "F32", "shape": [2],
                   "data_offsets": [4, 12]}})",
                  eight),
       StatusCode::kDataLoss, "run past the end of the data section"},
      {"reversed",
       WithHeader(R"({"w": {"dtype": "F32", "shape": [0],
                   "data_offsets": [8, 0]}})",
                  eight),
       StatusCode::kDataLoss, "reversed"},
      {"overlap",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [2],
                   "data_offsets": [0, 8]},
                   "b": {"dtype": "F32", "shape": [1],
                   "data_offsets": [4, 8]}})",
                  eight),
       StatusCode::kDataLoss, "tensors 'a' [0, 8) and 'b' [4, 8) overlap"},
      {"duplicate name",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [1],
                   "data_offsets": [0, 4]},
                   "a": {"dtype": "F32", "shape": [1],
                   "data_offsets": [4, 8]}})",
                  eight),
       StatusCode::kDataLoss, "key 'a' twice"},
      {"unknown field",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [2],
                   "data_offsets": [0, 8], "scale": 2}})",
                  eight),
       StatusCode::kDataLoss, "unexpected field 'scale'"},
      {"missing offsets",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [2]}})", eight),
       StatusCode::kDataLoss, "data_offsets"},
      {"metadata not strings", WithHeader(R"({"__metadata__": {"n": 3}})", ""),
       StatusCode::kDataLoss, "__metadata__ value of 'n'"},
  };
  TempDir dir;
  for (const BadFile& c : cases) {
    const auto path = dir.path() / "bad.safetensors";
    WriteBytes(path, c.bytes);
    auto file = SafetensorsFile::Open(path);
    ASSERT_FALSE(file.ok()) << c.what;
    EXPECT_EQ(file.status().code(), c.code) << c.what << ": " << file.status();
    EXPECT_NE(file.status().message().find(c.message_part), std::string::npos)
        << c.what << ": " << file.status();
    EXPECT_NE(file.status().message().find(path.string()), std::string::npos)
        << c.what << ": " << file.status();
  }
}

TEST(SafetensorsTest, EmptyTensorsOverlapNothing) {
  TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  WriteBytes(path, BuildSafetensors({
                       {"a", "F32", {2}, FloatBytes({1, 2}), std::nullopt},
                       {"e", "F32", {0}, "", std::pair(4, 4)},
                   }));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->Find("e")->NumElements(), 0);
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  auto file = SafetensorsFile::Open("/nonexistent/x.safetensors");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
}

}  // namespace
// A header nested past the JSON depth bound is refused before it is parsed
// (it would be walked recursively after).
TEST(SafetensorsTest, ADeeplyNestedHeaderIsRefused) {
  TempDir dir;
  std::string header = R"({"__metadata__": {"k": )" + std::string(5000, '[') +
                       std::string(5000, ']') + "}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  const auto path = dir.path() / "deep.safetensors";
  std::ofstream(path, std::ios::binary) << U64Bytes(header.size()) << header;
  auto file = SafetensorsFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("nested deeper than"),
            std::string::npos)
      << file.status();
}

}  // namespace rlrt
