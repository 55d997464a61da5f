// Fuzzes config.json parsing (ParseModelConfig). Contract: any bytes give
// an error or a config that ValidateModelConfig accepts; an accepted config
// survives ModelConfigToJson -> ParseModelConfig unchanged, and the leaf
// structure it implies is valid (non-empty, every leaf valid, names unique).
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "models/config/model_config.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace rlrt::fuzz {
namespace {

bool SameConfig(const ModelConfig& a, const ModelConfig& b) {
  return a.model_type == b.model_type && a.vocab_size == b.vocab_size &&
         a.hidden_size == b.hidden_size &&
         a.intermediate_size == b.intermediate_size &&
         a.num_hidden_layers == b.num_hidden_layers &&
         a.num_attention_heads == b.num_attention_heads &&
         a.num_key_value_heads == b.num_key_value_heads &&
         a.head_dim == b.head_dim && a.rms_norm_eps == b.rms_norm_eps &&
         a.rope_theta == b.rope_theta &&
         a.tie_word_embeddings == b.tie_word_embeddings &&
         a.max_position_embeddings == b.max_position_embeddings &&
         a.attention_bias == b.attention_bias && a.qk_norm == b.qk_norm &&
         a.bos_token_id == b.bos_token_id &&
         a.eos_token_ids == b.eos_token_ids && a.torch_dtype == b.torch_dtype;
}

void CheckConfig(std::string_view text) {
  StatusOr<ModelConfig> config = ParseModelConfig(text);
  if (!config.ok()) {
    // Bad input is the caller's fault; Internal would mean a parser bug that
    // was caught (an exception) rather than reported.
    FUZZ_CHECK(config.status().code() != StatusCode::kInternal, "%s",
               config.status().ToString().c_str());
    return;
  }
  const Status valid = ValidateModelConfig(*config);
  FUZZ_CHECK(valid.ok(), "parser accepted an invalid config: %s",
             valid.ToString().c_str());

  const std::string json = ModelConfigToJson(*config);
  StatusOr<ModelConfig> again = ParseModelConfig(json);
  FUZZ_CHECK(again.ok(), "ModelConfigToJson output refused: %s\n%s",
             again.status().ToString().c_str(), json.c_str());
  FUZZ_CHECK(SameConfig(*config, *again), "round trip changed the config:\n%s",
             json.c_str());

  // Up to 2^16 layers is valid; listing a huge stack's leaves tests nothing
  // a small one does not, and would make single runs slow.
  if (config->num_hidden_layers > 64) return;
  const std::vector<LeafSpec> specs = LeafSpecsFor(*config);
  FUZZ_CHECK(!specs.empty(), "valid config without leaves");
  std::set<std::string> names;
  for (const LeafSpec& spec : specs) {
    const Status s = ValidateLeafSpec(spec);
    FUZZ_CHECK(s.ok(), "%s", s.ToString().c_str());
    FUZZ_CHECK(names.insert(spec.name).second, "leaf '%s' twice",
               spec.name.c_str());
  }
  FUZZ_CHECK(config->NumParams() > 0, "no parameters");
}

}  // namespace
}  // namespace rlrt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rlrt::fuzz::CheckConfig(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
