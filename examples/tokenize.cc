// tokenize: encode text, decode ids, or render a Qwen3 chat prompt with a
// Hugging Face tokenizer directory. Prints one JSON line.
//
//   tokenize --tokenizer_dir=DIR --text='Hello world'      {"ids":[...]}
//   tokenize --tokenizer_dir=DIR --decode=9707,1879        {"text":"..."}
//   tokenize --tokenizer_dir=DIR --chat_json=msgs.json     {"text":...,
//   "ids":[...]}
//
// Exits 1 with a message on stderr for bad flags, files or ids.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <charconv>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "models/tokenizer/chat_template.h"
#include "models/tokenizer/tokenizer.h"

DEFINE_string(tokenizer_dir, "",
              "Directory with tokenizer.json and tokenizer_config.json.");
DEFINE_string(text, "", "Text to encode.");
DEFINE_string(decode, "", "Comma-separated ids to decode, e.g. 9707,1879.");
DEFINE_string(chat_json, "",
              "File with a JSON list of {\"role\", \"content\"} messages to "
              "render with the Qwen3 chat template and encode.");
DEFINE_bool(add_generation_prompt, true,
            "--chat_json: end with the assistant turn header.");
DEFINE_bool(enable_thinking, true,
            "--chat_json: false adds the empty think block (no reasoning).");
DEFINE_bool(add_special_tokens, false,
            "Let the post-processor add its special tokens (e.g. BOS).");
DEFINE_bool(parse_special, true,
            "Match added/special tokens written in the text.");
DEFINE_bool(skip_special_tokens, false, "--decode: drop special tokens.");

namespace rlrt {
namespace {

// Keys in the order written: {"text", "ids"}.
using json = nlohmann::ordered_json;

bool IsSet(const char* flag) {
  gflags::CommandLineFlagInfo info;
  return gflags::GetCommandLineFlagInfo(flag, &info) && !info.is_default;
}

// "1,2,3" -> {1, 2, 3}; the empty string is the empty list.
StatusOr<std::vector<int32_t>> ParseIds(const std::string& list) {
  std::vector<int32_t> ids;
  if (list.empty()) return ids;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    const std::string item = list.substr(pos, comma - pos);
    int32_t id = 0;
    const auto [end, ec] =
        std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size()) {
      return InvalidArgumentError("--decode: \"" + item +
                                  "\" is not an integer id");
    }
    ids.push_back(id);
    pos = comma + 1;
  }
  return ids;
}

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot open " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Invalid UTF-8 (possible when decoding arbitrary ids) is shown as U+FFFD
// instead of making the JSON writer fail.
void Print(const json& line) {
  std::cout << line.dump(-1, ' ', false, json::error_handler_t::replace)
            << std::endl;
}

Status Run() {
  if (FLAGS_tokenizer_dir.empty()) {
    return InvalidArgumentError("--tokenizer_dir is required");
  }
  const int modes = IsSet("text") + IsSet("decode") + IsSet("chat_json");
  if (modes != 1) {
    return InvalidArgumentError(
        "give exactly one of --text, --decode or --chat_json");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                   LoadTokenizer(FLAGS_tokenizer_dir));
  EncodeOptions options;
  options.add_special_tokens = FLAGS_add_special_tokens;
  options.parse_special = FLAGS_parse_special;

  if (IsSet("decode")) {
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseIds(FLAGS_decode));
    ASSIGN_OR_RETURN(std::string text,
                     tokenizer->Decode(ids, FLAGS_skip_special_tokens));
    Print({{"text", text}});
    return OkStatus();
  }
  if (IsSet("text")) {
    Print({{"ids", tokenizer->Encode(FLAGS_text, options)}});
    return OkStatus();
  }
  if (!tokenizer->TokenToId("<|im_start|>") ||
      !tokenizer->TokenToId("<|im_end|>")) {
    return FailedPreconditionError(
        "--chat_json renders the Qwen3 (ChatML) template, but this "
        "tokenizer has no <|im_start|>/<|im_end|> tokens");
  }
  ASSIGN_OR_RETURN(std::string file, ReadFile(FLAGS_chat_json));
  auto messages = ParseChatMessages(file);
  if (!messages.ok()) return messages.status().WithContext(FLAGS_chat_json);
  ChatTemplateOptions chat;
  chat.add_generation_prompt = FLAGS_add_generation_prompt;
  chat.enable_thinking = FLAGS_enable_thinking;
  ASSIGN_OR_RETURN(std::string text, ApplyQwen3ChatTemplate(*messages, chat));
  Print({{"text", text}, {"ids", tokenizer->Encode(text, options)}});
  return OkStatus();
}

}  // namespace
}  // namespace rlrt

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Encodes --text, decodes --decode=ids, or renders and encodes a "
      "--chat_json conversation with a Hugging Face tokenizer.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (argc > 1) {
    std::cerr << "tokenize: unexpected argument \"" << argv[1]
              << "\" (use --text=...)" << std::endl;
    return 1;
  }
  const rlrt::Status status = rlrt::Run();
  if (!status.ok()) {
    std::cerr << "tokenize: " << status << std::endl;
    return 1;
  }
  return 0;
}
