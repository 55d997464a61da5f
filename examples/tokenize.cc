// tokenize: encode text, decode ids, or render a chat prompt with a Hugging
// Face tokenizer directory. Prints one JSON line. The chat template is the
// model's, picked as the engine picks it (ChatTemplateFor): from the model
// type (--model_type, else config.json's in --tokenizer_dir, else qwen3)
// and the tokenizer's own template.
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
#include <filesystem>
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
              "render with the model's chat template and encode.");
DEFINE_string(model_type, "",
              "--chat_json: the model type whose chat template to use (qwen3, "
              "qwen2, llama). Empty: model_type of config.json in "
              "--tokenizer_dir if there is one, else qwen3.");
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

// --model_type, else config.json's model_type beside the tokenizer, else
// "qwen3".
StatusOr<std::string> ModelType() {
  if (!FLAGS_model_type.empty()) return FLAGS_model_type;
  const std::filesystem::path config =
      std::filesystem::path(FLAGS_tokenizer_dir) / "config.json";
  std::error_code ec;
  if (!std::filesystem::exists(config, ec)) return std::string("qwen3");
  ASSIGN_OR_RETURN(std::string text, ReadFile(config.string()));
  const json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  const auto it = root.is_object() ? root.find("model_type") : root.end();
  if (!root.is_object() || it == root.end() || !it->is_string()) {
    return InvalidArgumentError(config.string() +
                                " has no string model_type; pass --model_type");
  }
  return it->get<std::string>();
}

// The special tokens `kind` writes, which must be single tokens.
std::vector<std::string> TemplateTokens(ChatTemplateKind kind) {
  if (kind == ChatTemplateKind::kLlama2) return {"<s>", "</s>"};
  return {"<|im_start|>", "<|im_end|>"};
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
  ASSIGN_OR_RETURN(const std::string model_type, ModelType());
  const ChatTemplateKind kind = ChatTemplateFor(model_type, tokenizer.get());
  if (kind == ChatTemplateKind::kNone) {
    return NoChatTemplateError(model_type,
                               tokenizer->chat_template().has_value());
  }
  for (const std::string& token : TemplateTokens(kind)) {
    if (!tokenizer->TokenToId(token)) {
      return FailedPreconditionError(
          "--chat_json renders the " + std::string(ChatTemplateKindName(kind)) +
          " template, but this tokenizer has no " + token + " token");
    }
  }
  ASSIGN_OR_RETURN(std::string file, ReadFile(FLAGS_chat_json));
  auto messages = ParseChatMessages(file);
  if (!messages.ok()) return messages.status().WithContext(FLAGS_chat_json);
  ChatTemplateOptions chat;
  chat.add_generation_prompt = FLAGS_add_generation_prompt;
  chat.enable_thinking = FLAGS_enable_thinking;
  ASSIGN_OR_RETURN(std::string text, ApplyChatTemplate(kind, *messages, chat));
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
