#include "benchmarks/bench_workloads.h"

#include <glog/logging.h>

namespace rlrt {

ModelConfig Qwen3Shape100M() {
  ModelConfig c = PresetConfig("qwen3-0.6b").value();
  c.hidden_size = 512;
  c.intermediate_size = 1536;
  c.num_hidden_layers = 8;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 64;
  CHECK(ValidateModelConfig(c).ok());
  return c;
}

}  // namespace rlrt
