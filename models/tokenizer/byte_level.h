// The GPT-2 byte-to-character map used by byte-level BPE vocabularies
// (Qwen, GPT-2, Llama 3): every byte is shown as one printable character, so
// that vocabulary entries are strings. Printable Latin-1 bytes map to
// themselves; the other 68 bytes (controls, space, DEL, NBSP, soft hyphen)
// map, in byte order, to U+0100 onwards, which is why a space shows as "Ġ".
#ifndef RLRT_MODELS_TOKENIZER_BYTE_LEVEL_H_
#define RLRT_MODELS_TOKENIZER_BYTE_LEVEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rlrt::tokenizer_internal {

// The UTF-8 encoding of the character that stands for byte `b`.
std::string_view ByteLevelChar(uint8_t b);

// The byte-level form of `bytes`: one character per byte.
std::string ToByteLevel(std::string_view bytes);

// The bytes that the byte-level string `chars` stands for, or nullopt if it
// holds a character outside the map (such as an added token's text).
std::optional<std::string> FromByteLevel(std::string_view chars);

}  // namespace rlrt::tokenizer_internal

#endif  // RLRT_MODELS_TOKENIZER_BYTE_LEVEL_H_
