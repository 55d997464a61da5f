#include "models/synthetic_structure.h"

#include <string>

namespace rlrt {
namespace {

SyntheticShape ShapeFor(int64_t hidden, int64_t layers) {
  SyntheticShape s;
  s.vocab_size = 4096;
  s.hidden_size = hidden;
  s.head_dim = 64;
  s.num_heads = hidden / 64;
  s.num_kv_heads = std::max<int64_t>(1, s.num_heads / 2);
  s.intermediate_size = 3 * hidden;
  s.num_layers = layers;
  s.tie_embeddings = true;
  return s;
}

}  // namespace

StatusOr<SyntheticShape> ShapeForParamBudget(int64_t num_params) {
  const int64_t layers = num_params < 50'000'000      ? 4
                         : num_params < 1'000'000'000 ? 12
                                                      : 28;
  SyntheticShape best;
  for (int64_t hidden = 64;; hidden += 64) {
    SyntheticShape s = ShapeFor(hidden, layers);
    if (CountParams(Qwen3LeafSpecs(s)) > num_params) break;
    best = s;
  }
  if (best.hidden_size == 0) {
    return InvalidArgumentError(
        "num_params " + std::to_string(num_params) +
        " is below the smallest synthetic model (" +
        std::to_string(CountParams(Qwen3LeafSpecs(ShapeFor(64, layers)))) +
        " parameters)");
  }
  // Hidden sizes move in coarse steps; extra layers fill the remainder.
  for (;;) {
    SyntheticShape deeper = best;
    ++deeper.num_layers;
    if (CountParams(Qwen3LeafSpecs(deeper)) > num_params) break;
    best = deeper;
  }
  return best;
}

std::vector<LeafSpec> Qwen3LeafSpecs(const SyntheticShape& s, DType dtype) {
  std::vector<LeafSpec> specs;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    specs.push_back(LeafSpec{std::move(name), std::move(shape), dtype});
  };
  const int64_t q = s.num_heads * s.head_dim;
  const int64_t kv = s.num_kv_heads * s.head_dim;
  add("model.embed_tokens.weight", {s.vocab_size, s.hidden_size});
  for (int64_t l = 0; l < s.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {s.hidden_size});
    add(p + "self_attn.q_proj.weight", {q, s.hidden_size});
    add(p + "self_attn.k_proj.weight", {kv, s.hidden_size});
    add(p + "self_attn.v_proj.weight", {kv, s.hidden_size});
    add(p + "self_attn.o_proj.weight", {s.hidden_size, q});
    add(p + "self_attn.q_norm.weight", {s.head_dim});
    add(p + "self_attn.k_norm.weight", {s.head_dim});
    add(p + "post_attention_layernorm.weight", {s.hidden_size});
    add(p + "mlp.gate_proj.weight", {s.intermediate_size, s.hidden_size});
    add(p + "mlp.up_proj.weight", {s.intermediate_size, s.hidden_size});
    add(p + "mlp.down_proj.weight", {s.hidden_size, s.intermediate_size});
  }
  add("model.norm.weight", {s.hidden_size});
  if (!s.tie_embeddings) add("lm_head.weight", {s.vocab_size, s.hidden_size});
  return specs;
}

int64_t CountParams(const std::vector<LeafSpec>& specs) {
  int64_t n = 0;
  for (const LeafSpec& s : specs) n += s.NumElements();
  return n;
}

}  // namespace rlrt
