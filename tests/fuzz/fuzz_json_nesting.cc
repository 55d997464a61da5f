// Builds deeply nested JSON from the input and feeds it to every parser
// that reads JSON from outside: the server's request readers (behind the
// same depth check as the server's ParseBody), config.json, tokenizer
// JSON and chat messages. Each input byte is an instruction: open an array
// or an object member, close, add a scalar or a string with brackets in it,
// or repeat the previous instruction up to 4096 times, so a few bytes
// reach depths far past kMaxJsonDepth. Contract: nothing crashes or throws;
// a text nested deeper than the bound is refused by every entry point with
// the bound in the message; a text within it parses, dumps and is destroyed
// without trouble.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/json_limits.h"
#include "models/config/model_config.h"
#include "models/tokenizer/chat_template.h"
#include "models/tokenizer/json_util.h"
#include "sampler/server/api_json.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace rlrt::fuzz {
namespace {

using nlohmann::json;

std::string Build(std::string_view program) {
  std::string text;
  char last = 0;
  for (size_t i = 0; i < program.size() && text.size() < (1 << 20); ++i) {
    const unsigned char op = static_cast<unsigned char>(program[i]);
    int repeat = 1;
    char what = static_cast<char>(op % 6);
    if (what == 5) {  // Repeat the previous instruction.
      what = last;
      repeat = 1 + (op >> 3) * 128;
    }
    last = what;
    for (int r = 0; r < repeat; ++r) {
      switch (what) {
        case 0:
          text += '[';
          break;
        case 1:
          text += R"({"content":)";
          break;
        case 2:
          text += op & 8 ? '}' : ']';
          break;
        case 3:
          text += "1,";
          break;
        case 4:
          text += R"("[{\"]}",)";
          break;
        default:
          break;
      }
    }
  }
  return text;
}

bool SaysTooDeep(const Status& s) {
  return s.message().find("nested deeper than") != std::string::npos;
}

void Run(std::string_view input) {
  const std::string text = Build(input);
  const bool too_deep = !CheckJsonDepth(text, "text").ok();

  StatusOr<ModelConfig> config = ParseModelConfig(text);
  FUZZ_CHECK(!too_deep || (!config.ok() && SaysTooDeep(config.status())),
             "config.json accepted a deep text");
  StatusOr<tokenizer_internal::Json> tok =
      tokenizer_internal::ParseJson(text, "tokenizer.json");
  FUZZ_CHECK(!too_deep || (!tok.ok() && SaysTooDeep(tok.status())),
             "tokenizer JSON accepted a deep text");
  StatusOr<std::vector<ChatMessage>> messages = ParseChatMessages(text);
  FUZZ_CHECK(!too_deep || !messages.ok(), "chat messages from a deep text");
  if (too_deep) return;

  // Within the bound: what the server does with a body.
  try {
    const json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) return;
    (void)body.dump();
    const json copy = body;
    (void)ParseGenerateRequest(copy);
    (void)ParseCompletionsRequest(copy);
    (void)ParseChatCompletionsRequest(copy);
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, "exception escaped: %s", e.what());
  }
}

}  // namespace
}  // namespace rlrt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rlrt::fuzz::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
