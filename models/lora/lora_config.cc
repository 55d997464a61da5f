#include "models/lora/lora_config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/json_limits.h"

namespace rlrt {
namespace {

using Json = nlohmann::json;

Status Malformed(const std::string& message) {
  return InvalidArgumentError("adapter_config.json: " + message);
}
Status Unsupported(const std::string& message) {
  return UnimplementedError("adapter_config.json: " + message);
}

std::string Show(const Json& v) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

const Json* FindNonNull(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// Null, false, an empty container or an empty string: the field asks for
// nothing beyond plain LoRA.
bool IsUnset(const Json* v) {
  return v == nullptr || (v->is_boolean() && !v->get<bool>()) ||
         ((v->is_object() || v->is_array() || v->is_string()) && v->empty());
}

std::string KnownModules() { return LoraTargetModulesString(kAllLoraModules); }

int ModuleIndex(std::string_view name) {
  for (size_t i = 0; i < kLoraModules.size(); ++i) {
    if (LoraModuleName(kLoraModules[i]) == name) return static_cast<int>(i);
  }
  return -1;
}

// One entry of a target_modules list, as PEFT matches it: a module whose
// name is the entry or ends with "." + entry. "q_proj" and
// "self_attn.q_proj" select q_proj in every layer.
StatusOr<uint32_t> TargetEntry(std::string_view entry) {
  const size_t dot = entry.rfind('.');
  const std::string_view last =
      dot == std::string_view::npos ? entry : entry.substr(dot + 1);
  const int index = ModuleIndex(last);
  if (index < 0) {
    return Malformed("target module '" + std::string(entry) +
                     "' is not a projection of a decoder layer (known: " +
                     KnownModules() + ")");
  }
  const std::string_view prefix =
      dot == std::string_view::npos ? std::string_view() : entry.substr(0, dot);
  if (!prefix.empty() && prefix != LoraModuleParent(kLoraModules[index])) {
    return Unsupported("target module '" + std::string(entry) +
                       "' selects some layers only; adapters here cover "
                       "every layer");
  }
  return 1u << index;
}

StatusOr<uint32_t> ParseTargets(const Json* v) {
  // PEFT's default for Llama, Qwen2 and Qwen3 when none are named.
  if (v == nullptr) {
    return (1u << ModuleIndex("q_proj")) | (1u << ModuleIndex("v_proj"));
  }
  if (v->is_string()) {
    const std::string s = v->get<std::string>();
    if (s == "all-linear") return kAllLoraModules;
    return Unsupported("target_modules as a regular expression ('" + Show(*v) +
                       "') is not supported; list module names");
  }
  if (!v->is_array() || v->empty()) {
    return Malformed("target_modules must be a non-empty list of names, got " +
                     Show(*v));
  }
  uint32_t mask = 0;
  for (const Json& e : *v) {
    if (!e.is_string()) {
      return Malformed("target_modules entries must be strings, got " +
                       Show(e));
    }
    ASSIGN_OR_RETURN(uint32_t bit, TargetEntry(e.get<std::string>()));
    mask |= bit;
  }
  return mask;
}

StatusOr<double> Number(const Json& root, const char* key, double fallback) {
  const Json* v = FindNonNull(root, key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) {
    return Malformed(std::string(key) + " must be a number, got " + Show(*v));
  }
  return v->get<double>();
}

}  // namespace

std::string_view LoraModuleName(LayerParam projection) {
  switch (projection) {
    case LayerParam::kQProj:
      return "q_proj";
    case LayerParam::kKProj:
      return "k_proj";
    case LayerParam::kVProj:
      return "v_proj";
    case LayerParam::kOProj:
      return "o_proj";
    case LayerParam::kGateProj:
      return "gate_proj";
    case LayerParam::kUpProj:
      return "up_proj";
    case LayerParam::kDownProj:
      return "down_proj";
    default:
      return {};
  }
}

std::string_view LoraModuleParent(LayerParam projection) {
  switch (projection) {
    case LayerParam::kGateProj:
    case LayerParam::kUpProj:
    case LayerParam::kDownProj:
      return "mlp";
    default:
      return "self_attn";
  }
}

bool LoraConfig::Targets(LayerParam projection) const {
  for (size_t i = 0; i < kLoraModules.size(); ++i) {
    if (kLoraModules[i] == projection) return (target_mask >> i) & 1u;
  }
  return false;
}

float LoraConfig::Scale() const {
  const double r = static_cast<double>(rank);
  return static_cast<float>(use_rslora ? alpha / std::sqrt(r) : alpha / r);
}

bool SameLoraShapeAndScale(const LoraConfig& a, const LoraConfig& b) {
  return a.rank == b.rank && a.target_mask == b.target_mask &&
         a.Scale() == b.Scale();
}

Status ValidateLoraConfig(const LoraConfig& config, int64_t max_rank) {
  if (config.rank < 1 || config.rank > max_rank) {
    return InvalidArgumentError("LoRA rank " + std::to_string(config.rank) +
                                " is outside [1, " + std::to_string(max_rank) +
                                "]");
  }
  if (!std::isfinite(config.alpha) || config.alpha <= 0) {
    return InvalidArgumentError("lora_alpha must be positive and finite, got " +
                                std::to_string(config.alpha));
  }
  if (!(config.dropout >= 0 && config.dropout < 1)) {
    return InvalidArgumentError("lora_dropout must be in [0, 1), got " +
                                std::to_string(config.dropout));
  }
  if (config.target_mask == 0 || (config.target_mask & ~kAllLoraModules)) {
    return InvalidArgumentError(
        "LoRA target modules must be a non-empty "
        "subset of " +
        KnownModules());
  }
  return OkStatus();
}

StatusOr<uint32_t> ParseLoraTargetModules(std::string_view text) {
  if (text == "all" || text == "all-linear") return kAllLoraModules;
  uint32_t mask = 0;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view name = text.substr(begin, end - begin);
    const int index = ModuleIndex(name);
    if (index < 0) {
      return InvalidArgumentError("--lora_target_modules: '" +
                                  std::string(name) + "' is not one of " +
                                  KnownModules() + " (or 'all')");
    }
    mask |= 1u << index;
    begin = end + 1;
  }
  return mask;
}

std::string LoraTargetModulesString(uint32_t mask) {
  std::string out;
  for (size_t i = 0; i < kLoraModules.size(); ++i) {
    if (!((mask >> i) & 1u)) continue;
    if (!out.empty()) out += ',';
    out += LoraModuleName(kLoraModules[i]);
  }
  return out;
}

StatusOr<LoraConfig> LoraConfigFromJson(std::string_view text) {
  if (text.size() > kMaxAdapterConfigBytes) {
    return Malformed("larger than " + std::to_string(kMaxAdapterConfigBytes) +
                     " bytes");
  }
  RETURN_IF_ERROR(CheckJsonDepth(text, "adapter_config.json"));
  Json root;
  try {
    root = Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return InvalidArgumentError(JsonSyntaxError("adapter_config.json", e.byte));
  }
  if (!root.is_object()) return Malformed("must be a JSON object");
  const Json* peft_type = FindNonNull(root, "peft_type");
  if (peft_type == nullptr || !peft_type->is_string()) {
    return Malformed("missing peft_type");
  }
  if (peft_type->get<std::string>() != "LORA") {
    return Unsupported("peft_type " + Show(*peft_type) +
                       " is not supported (only LORA)");
  }
  const Json* task = FindNonNull(root, "task_type");
  if (task != nullptr && *task != "CAUSAL_LM") {
    return Unsupported("task_type " + Show(*task) +
                       " is not supported (only CAUSAL_LM)");
  }
  // Features that change what the forward computes, refused by name.
  for (const char* key :
       {"use_dora", "rank_pattern", "alpha_pattern", "layers_to_transform",
        "layers_pattern", "modules_to_save", "fan_in_fan_out",
        "layer_replication", "exclude_modules", "target_parameters",
        "trainable_token_indices", "lora_bias"}) {
    const Json* v = FindNonNull(root, key);
    if (!IsUnset(v)) {
      return Unsupported(std::string(key) + " " + Show(*v) +
                         " is not supported");
    }
  }
  const Json* bias = FindNonNull(root, "bias");
  if (bias != nullptr && *bias != "none") {
    return Unsupported("bias " + Show(*bias) + " is not supported (only none)");
  }

  LoraConfig config;
  const Json* r = FindNonNull(root, "r");
  if (r == nullptr || !r->is_number_integer()) {
    return Malformed("r must be an integer, got " +
                     (r == nullptr ? std::string("nothing") : Show(*r)));
  }
  if (r->is_number_unsigned() ? r->get<uint64_t>() > (1u << 30)
                              : r->get<int64_t>() < 1) {
    return Malformed("r " + Show(*r) + " is out of range");
  }
  config.rank = r->get<int64_t>();
  ASSIGN_OR_RETURN(config.alpha, Number(root, "lora_alpha", 8.0));
  ASSIGN_OR_RETURN(config.dropout, Number(root, "lora_dropout", 0.0));
  const Json* rslora = FindNonNull(root, "use_rslora");
  if (rslora != nullptr && !rslora->is_boolean()) {
    return Malformed("use_rslora must be true or false, got " + Show(*rslora));
  }
  config.use_rslora = rslora != nullptr && rslora->get<bool>();
  ASSIGN_OR_RETURN(config.target_mask,
                   ParseTargets(FindNonNull(root, "target_modules")));
  const Json* base = FindNonNull(root, "base_model_name_or_path");
  if (base != nullptr && base->is_string()) {
    config.base_model_name_or_path = base->get<std::string>();
  }
  RETURN_IF_ERROR(ValidateLoraConfig(config, int64_t{1} << 30));
  return config;
}

std::string LoraConfigToJson(const LoraConfig& config) {
  // The fields PEFT's LoraConfig writes, with the values plain LoRA has, so
  // PEFT (0.7 and later) reads the file back without warnings.
  nlohmann::ordered_json j;
  j["alpha_pattern"] = Json::object();
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = config.base_model_name_or_path;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = nullptr;
  if (config.alpha == std::floor(config.alpha) && config.alpha < 1e15) {
    j["lora_alpha"] = static_cast<int64_t>(config.alpha);
  } else {
    j["lora_alpha"] = config.alpha;
  }
  j["lora_dropout"] = config.dropout;
  j["modules_to_save"] = nullptr;
  j["peft_type"] = "LORA";
  j["r"] = config.rank;
  j["rank_pattern"] = Json::object();
  j["revision"] = nullptr;
  std::vector<std::string> targets;
  for (size_t i = 0; i < kLoraModules.size(); ++i) {
    if ((config.target_mask >> i) & 1u) {
      targets.emplace_back(LoraModuleName(kLoraModules[i]));
    }
  }
  j["target_modules"] = targets;
  j["task_type"] = "CAUSAL_LM";
  j["use_rslora"] = config.use_rslora;
  return j.dump(2, ' ', false,
                nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

}  // namespace rlrt
