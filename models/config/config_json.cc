// Reading and writing Hugging Face config.json (the JSON half of
// model_config.h).
//
// Defaults for absent keys are those of transformers' config classes
// (LlamaConfig, Qwen2Config, Qwen3Config), so a config.json means the same
// model here as there:
//   key                      llama            qwen2            qwen3
//   num_key_value_heads      heads            (class: 32)      (class: 32)
//   head_dim                 hidden / heads   hidden / heads   (class: 128)
//   max_position_embeddings  2048             32768            32768
//   rms_norm_eps             1e-6             1e-6             1e-6
//   rope_theta               10000            10000            10000
//   tie_word_embeddings      false            false            false
//   attention_bias           false            (always q/k/v)   false
//   bos_token_id             1                none             none
//   eos_token_id             2                none             none
//   hidden_act               silu             silu             silu
// The "(class: N)" defaults differ from what the shapes suggest (Qwen3's
// head_dim 128 regardless of hidden size; 32 KV heads regardless of the head
// count), so a Qwen config.json without those keys is refused rather than
// silently read as either. An explicit null means "derive it", as in
// transformers' __post_init__: num_key_value_heads = num_attention_heads,
// head_dim = hidden_size / num_attention_heads (Llama/Qwen2 only).
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "base/json_limits.h"
#include "models/config/model_config.h"

namespace rlrt {
namespace {

using Json = nlohmann::json;

// Refusals of features the forward pass lacks are kUnimplemented; malformed
// or inconsistent input is kInvalidArgument.
Status Unsupported(std::string message) {
  return UnimplementedError("config.json: " + message);
}
Status Malformed(std::string message) {
  return InvalidArgumentError("config.json: " + message);
}

// A short rendering of a JSON value for error messages.
std::string Show(const Json& v) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// The value under `key`, or null when the key is absent or its value is null
// (transformers treats both as "use the default").
const Json* FindNonNull(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

StatusOr<int64_t> AsInt(const Json& v, const std::string& key) {
  // nlohmann stores non-negative integers as unsigned; floats such as 32.0
  // are refused, as transformers' strict configs refuse them for int fields.
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Malformed(key + " " + Show(v) + " is out of range");
    }
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return Malformed(key + " must be an integer, got " + Show(v));
}

StatusOr<int64_t> RequiredInt(const Json& obj, const std::string& key) {
  const Json* v = FindNonNull(obj, key);
  if (v == nullptr) return Malformed("missing required field '" + key + "'");
  return AsInt(*v, key);
}

StatusOr<int64_t> OptionalInt(const Json& obj, const std::string& key,
                              int64_t fallback) {
  const Json* v = FindNonNull(obj, key);
  if (v == nullptr) return fallback;
  return AsInt(*v, key);
}

StatusOr<double> OptionalNumber(const Json& obj, const std::string& key,
                                double fallback) {
  const Json* v = FindNonNull(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) {
    return Malformed(key + " must be a number, got " + Show(*v));
  }
  return v->get<double>();
}

StatusOr<bool> OptionalBool(const Json& obj, const std::string& key,
                            bool fallback) {
  const Json* v = FindNonNull(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) {
    return Malformed(key + " must be true or false, got " + Show(*v));
  }
  return v->get<bool>();
}

StatusOr<std::string> OptionalString(const Json& obj, const std::string& key,
                                     std::string fallback) {
  const Json* v = FindNonNull(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_string()) {
    return Malformed(key + " must be a string, got " + Show(*v));
  }
  return v->get<std::string>();
}

struct TypeInfo {
  ModelType type;
  const char* architecture;
};

StatusOr<TypeInfo> ParseModelType(const Json& root) {
  const Json* v = FindNonNull(root, "model_type");
  if (v == nullptr) return Malformed("missing required field 'model_type'");
  if (!v->is_string()) {
    return Malformed("model_type must be a string, got " + Show(*v));
  }
  const std::string name = v->get<std::string>();
  if (name == "qwen3") return TypeInfo{ModelType::kQwen3, "Qwen3ForCausalLM"};
  if (name == "qwen2") return TypeInfo{ModelType::kQwen2, "Qwen2ForCausalLM"};
  if (name == "llama") return TypeInfo{ModelType::kLlama, "LlamaForCausalLM"};
  return Unsupported("unsupported model_type '" + name +
                     "' (supported: qwen3, qwen2, llama)");
}

// Another head class (e.g. ...ForSequenceClassification) has other tensors
// than the causal LM this runtime builds.
Status CheckArchitectures(const Json& root, const TypeInfo& info) {
  const Json* v = FindNonNull(root, "architectures");
  if (v == nullptr) return OkStatus();
  if (!v->is_array() || v->size() != 1 || !(*v)[0].is_string() ||
      (*v)[0].get<std::string>() != info.architecture) {
    return Unsupported("architectures " + Show(*v) + " is not [\"" +
                       info.architecture + "\"]");
  }
  return OkStatus();
}

// rope_scaling (transformers v4) and rope_parameters (v5) may spell out the
// plain rotary embedding, {"rope_type": "default", "rope_theta": ...}; any
// actual scaling is refused. Updates *theta from the dict when it has one.
Status ParseRopeDict(const Json& root, const std::string& key,
                     std::optional<double>* theta) {
  const Json* v = FindNonNull(root, key);
  if (v == nullptr) return OkStatus();
  if (!v->is_object()) {
    return Malformed(key + " must be an object or null, got " + Show(*v));
  }
  // The kind of embedding first, so a scaled one is reported as such even
  // when its rope_theta also disagrees.
  const std::string kNotPlain =
      " is not supported (only plain rotary embeddings: null or rope_type "
      "\"default\")";
  bool is_default = false;
  for (const auto& [field, value] : v->items()) {
    if (field == "rope_type" || field == "type") {
      if (!value.is_string() || value.get<std::string>() != "default") {
        return Unsupported(key + " " + Show(*v) + kNotPlain);
      }
      is_default = true;
    } else if (field != "rope_theta") {
      return Unsupported(key + " " + Show(*v) + kNotPlain);
    }
  }
  if (!is_default) return Unsupported(key + " " + Show(*v) + kNotPlain);
  if (const Json* t = FindNonNull(*v, "rope_theta")) {
    if (!t->is_number()) {
      return Malformed(key + ".rope_theta must be a number, got " + Show(*t));
    }
    const double value = t->get<double>();
    if (theta->has_value() && **theta != value) {
      return Malformed(key + ".rope_theta " + Show(*t) +
                       " contradicts rope_theta " + Show(Json(**theta)));
    }
    *theta = value;
  }
  return OkStatus();
}

Status ParseRope(const Json& root, ModelConfig& c) {
  std::optional<double> theta;
  if (const Json* v = FindNonNull(root, "rope_theta")) {
    if (!v->is_number()) {
      return Malformed("rope_theta must be a number, got " + Show(*v));
    }
    theta = v->get<double>();
  }
  RETURN_IF_ERROR(ParseRopeDict(root, "rope_scaling", &theta));
  RETURN_IF_ERROR(ParseRopeDict(root, "rope_parameters", &theta));
  ASSIGN_OR_RETURN(const double partial,
                   OptionalNumber(root, "partial_rotary_factor", 1.0));
  if (partial != 1.0) {
    return Unsupported("partial_rotary_factor " + std::to_string(partial) +
                       " is not supported (only 1.0)");
  }
  c.rope_theta = theta.value_or(10000.0);
  return OkStatus();
}

Status ParseAttentionWindow(const Json& root, const ModelConfig& c) {
  if (c.model_type != ModelType::kLlama) {
    ASSIGN_OR_RETURN(const bool sliding,
                     OptionalBool(root, "use_sliding_window", false));
    if (sliding) {
      return Unsupported(
          "use_sliding_window true is not supported (full attention only)");
    }
  }
  if (const Json* v = FindNonNull(root, "layer_types")) {
    if (!v->is_array()) {
      return Malformed("layer_types must be a list, got " + Show(*v));
    }
    for (const Json& t : *v) {
      if (!t.is_string() || t.get<std::string>() != "full_attention") {
        return Unsupported("layer_types entry " + Show(t) +
                           " is not supported (only \"full_attention\")");
      }
    }
  }
  return OkStatus();
}

Status ParseHeads(const Json& root, ModelConfig& c) {
  const bool qwen = c.model_type != ModelType::kLlama;
  ASSIGN_OR_RETURN(c.num_attention_heads,
                   RequiredInt(root, "num_attention_heads"));
  if (c.num_attention_heads <= 0) {
    return Malformed("num_attention_heads must be positive, got " +
                     std::to_string(c.num_attention_heads));
  }
  if (qwen && !root.contains("num_key_value_heads")) {
    return Malformed(
        "missing required field 'num_key_value_heads' (transformers would "
        "default it to 32 for " +
        std::string(ModelTypeName(c.model_type)) +
        ", not to num_attention_heads)");
  }
  ASSIGN_OR_RETURN(
      c.num_key_value_heads,
      OptionalInt(root, "num_key_value_heads", c.num_attention_heads));
  if (c.model_type == ModelType::kQwen3) {
    const Json* v = FindNonNull(root, "head_dim");
    if (v == nullptr) {
      return Malformed(
          "missing required field 'head_dim' (transformers would default it "
          "to 128 for qwen3, not to hidden_size / num_attention_heads)");
    }
    ASSIGN_OR_RETURN(c.head_dim, AsInt(*v, "head_dim"));
  } else if (const Json* v = FindNonNull(root, "head_dim")) {
    ASSIGN_OR_RETURN(c.head_dim, AsInt(*v, "head_dim"));
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      return Malformed("head_dim is not given and hidden_size " +
                       std::to_string(c.hidden_size) +
                       " is not a multiple of num_attention_heads " +
                       std::to_string(c.num_attention_heads));
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  return OkStatus();
}

Status ParseBiasesAndActivation(const Json& root, ModelConfig& c) {
  ASSIGN_OR_RETURN(const std::string act,
                   OptionalString(root, "hidden_act", "silu"));
  if (act != "silu") {
    return Unsupported("hidden_act '" + act + "' is not supported (only silu)");
  }
  ASSIGN_OR_RETURN(const bool mlp_bias, OptionalBool(root, "mlp_bias", false));
  if (mlp_bias) return Unsupported("mlp_bias true is not supported");
  c.qk_norm = c.model_type == ModelType::kQwen3;
  if (c.model_type == ModelType::kQwen2) {
    // Qwen2Attention hard-codes bias=True on q/k/v (none on o_proj) and
    // reads no attention_bias key, so neither do we.
    c.attention_bias = true;
    return OkStatus();
  }
  ASSIGN_OR_RETURN(const bool bias,
                   OptionalBool(root, "attention_bias", false));
  if (bias) {
    return Unsupported(
        "attention_bias true is not supported for " +
        std::string(ModelTypeName(c.model_type)) +
        " (it adds biases to q/k/v and o_proj; only Qwen2's q/k/v biases are "
        "implemented)");
  }
  c.attention_bias = false;
  return OkStatus();
}

Status ParseSpecialTokens(const Json& root, ModelConfig& c) {
  const bool llama = c.model_type == ModelType::kLlama;
  c.bos_token_id = -1;
  if (!root.contains("bos_token_id")) {
    if (llama) c.bos_token_id = 1;
  } else if (const Json* v = FindNonNull(root, "bos_token_id")) {
    ASSIGN_OR_RETURN(c.bos_token_id, AsInt(*v, "bos_token_id"));
    if (c.bos_token_id < 0) {
      return Malformed("bos_token_id must be non-negative or null, got " +
                       Show(*v));
    }
  }
  c.eos_token_ids.clear();
  if (!root.contains("eos_token_id")) {
    if (llama) c.eos_token_ids = {2};
  } else if (const Json* v = FindNonNull(root, "eos_token_id")) {
    if (v->is_array()) {
      for (const Json& e : *v) {
        ASSIGN_OR_RETURN(const int64_t id, AsInt(e, "eos_token_id entry"));
        c.eos_token_ids.push_back(id);
      }
    } else {
      ASSIGN_OR_RETURN(const int64_t id, AsInt(*v, "eos_token_id"));
      c.eos_token_ids.push_back(id);
    }
  }
  return OkStatus();
}

Status ParseDtype(const Json& root, ModelConfig& c) {
  // transformers v5 writes "dtype"; v4 writes "torch_dtype".
  ASSIGN_OR_RETURN(const std::string legacy,
                   OptionalString(root, "torch_dtype", ""));
  ASSIGN_OR_RETURN(const std::string modern, OptionalString(root, "dtype", ""));
  if (!legacy.empty() && !modern.empty() && legacy != modern) {
    return Malformed("torch_dtype '" + legacy + "' contradicts dtype '" +
                     modern + "'");
  }
  c.torch_dtype = !legacy.empty()   ? legacy
                  : !modern.empty() ? modern
                                    : "float32";
  return OkStatus();
}

StatusOr<ModelConfig> ParseObject(const Json& root) {
  if (!root.is_object()) {
    return Malformed("top level must be a JSON object, got " + Show(root));
  }
  ASSIGN_OR_RETURN(const TypeInfo info, ParseModelType(root));
  RETURN_IF_ERROR(CheckArchitectures(root, info));
  ModelConfig c;
  c.model_type = info.type;
  const bool llama = info.type == ModelType::kLlama;
  // Required although transformers has class defaults: those describe a
  // 7B-class model, never the checkpoint beside this file.
  ASSIGN_OR_RETURN(c.vocab_size, RequiredInt(root, "vocab_size"));
  ASSIGN_OR_RETURN(c.hidden_size, RequiredInt(root, "hidden_size"));
  ASSIGN_OR_RETURN(c.intermediate_size, RequiredInt(root, "intermediate_size"));
  ASSIGN_OR_RETURN(c.num_hidden_layers, RequiredInt(root, "num_hidden_layers"));
  RETURN_IF_ERROR(ParseHeads(root, c));
  ASSIGN_OR_RETURN(
      c.max_position_embeddings,
      OptionalInt(root, "max_position_embeddings", llama ? 2048 : 32768));
  ASSIGN_OR_RETURN(c.rms_norm_eps, OptionalNumber(root, "rms_norm_eps", 1e-6));
  ASSIGN_OR_RETURN(c.tie_word_embeddings,
                   OptionalBool(root, "tie_word_embeddings", false));
  RETURN_IF_ERROR(ParseRope(root, c));
  RETURN_IF_ERROR(ParseAttentionWindow(root, c));
  RETURN_IF_ERROR(ParseBiasesAndActivation(root, c));
  RETURN_IF_ERROR(ParseSpecialTokens(root, c));
  RETURN_IF_ERROR(ParseDtype(root, c));
  Status valid = ValidateModelConfig(c);
  if (!valid.ok()) return valid.WithContext("config.json");
  return c;
}

}  // namespace

StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text) {
  RETURN_IF_ERROR(CheckJsonDepth(json_text, "config.json"));
  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::parse_error& e) {
    return InvalidArgumentError(JsonSyntaxError("config.json", e.byte));
  } catch (const Json::exception&) {
    return InvalidArgumentError("config.json is not valid JSON");
  } catch (const std::exception& e) {
    return ResourceExhaustedError(std::string("config.json: ") + e.what());
  }
  return ParseObject(root);
}

StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& model_dir) {
  const std::filesystem::path path = model_dir / "config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFoundError("no config.json in " + model_dir.string());
  }
  // A config.json is a few KB; anything huge is not one.
  constexpr uintmax_t kMaxBytes = uintmax_t{16} << 20;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxBytes) {
    return InvalidArgumentError(path.string() + ": unreadable or larger than " +
                                "16 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return DataLossError("failed to read " + path.string());
  }
  StatusOr<ModelConfig> config = ParseModelConfig(text.str());
  if (config.ok()) return config;
  // Parser messages name "config.json"; name the actual file instead.
  std::string message = config.status().message();
  constexpr std::string_view kName = "config.json";
  if (message.starts_with(kName)) {
    message.replace(0, kName.size(), path.string());
  } else {
    message = path.string() + ": " + message;
  }
  return Status(config.status().code(), std::move(message));
}

std::string ModelConfigToJson(const ModelConfig& c) {
  // ordered_json keeps the keys in the order written, as HF's files have
  // them grouped by meaning rather than sorted.
  nlohmann::ordered_json j;
  const bool llama = c.model_type == ModelType::kLlama;
  const char* arch = c.model_type == ModelType::kQwen3   ? "Qwen3ForCausalLM"
                     : c.model_type == ModelType::kQwen2 ? "Qwen2ForCausalLM"
                                                         : "LlamaForCausalLM";
  j["architectures"] = {arch};
  j["model_type"] = std::string(ModelTypeName(c.model_type));
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["rope_scaling"] = nullptr;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  // Qwen2Config has no attention_bias key (its q/k/v biases are fixed).
  if (c.model_type != ModelType::kQwen2) {
    j["attention_bias"] = c.attention_bias;
  }
  j["attention_dropout"] = 0.0;
  if (llama) {
    j["mlp_bias"] = false;
  } else {
    j["use_sliding_window"] = false;
    j["sliding_window"] = nullptr;
  }
  j["bos_token_id"] = c.bos_token_id >= 0
                          ? nlohmann::ordered_json(c.bos_token_id)
                          : nlohmann::ordered_json(nullptr);
  if (c.eos_token_ids.empty()) {
    j["eos_token_id"] = nullptr;
  } else if (c.eos_token_ids.size() == 1) {
    j["eos_token_id"] = c.eos_token_ids[0];
  } else {
    j["eos_token_id"] = c.eos_token_ids;
  }
  j["torch_dtype"] = c.torch_dtype;
  j["use_cache"] = true;
  // error_handler_t::replace: dump never throws, even on a torch_dtype that
  // is not UTF-8 (ValidateModelConfig would refuse such a config anyway).
  return j.dump(2, ' ', false,
                nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

}  // namespace rlrt
