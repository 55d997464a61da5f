// The rollout server's LoRA endpoints (vLLM's names): loading and unloading
// adapters at run time, and /v1/models listing them beside the base.
#include <nlohmann/json.hpp>
#include <string>

#include "sampler/server/api_json.h"
#include "sampler/server/http_reply.h"
#include "sampler/server/rollout_server.h"

namespace rlrt {
namespace {

using nlohmann::json;

// Adapter names are echoed in /v1/models and in every OpenAI response.
constexpr size_t kMaxLoraNameBytes = 256;
constexpr size_t kMaxLoraPathBytes = 4096;

// The string field `key` of `body`: present, non-empty, at most `max` bytes.
StatusOr<std::string> RequiredString(const json& body, const char* key,
                                     size_t max) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_string() ||
      it->get_ref<const std::string&>().empty()) {
    return InvalidArgumentError(std::string("\"") + key +
                                "\" must be a non-empty string");
  }
  const std::string& value = it->get_ref<const std::string&>();
  if (value.size() > max) {
    return InvalidArgumentError(std::string("\"") + key + "\" is longer than " +
                                std::to_string(max) + " bytes");
  }
  return value;
}

}  // namespace

nlohmann::json RolloutServer::ModelsJson() const {
  json data = json::array();
  data.push_back({{"id", options_.model_name},
                  {"object", "model"},
                  {"owned_by", "rlrt"},
                  {"max_model_len", engine_->context_length()},
                  // Extensions a trainer needs to match the sampler: the
                  // ids it can draw, and the version in force.
                  {"vocab_size", engine_->vocab_size()},
                  {"weight_version", engine_->Stats().weight_version}});
  for (const AdapterInfo& a : engine_->Adapters()) {
    data.push_back({{"id", a.name},
                    {"object", "model"},
                    {"owned_by", "rlrt"},
                    {"root", a.source},
                    {"parent", options_.model_name},
                    {"max_model_len", engine_->context_length()},
                    {"lora_rank", a.rank},
                    {"target_modules", a.target_modules},
                    {"weight_version", a.version}});
  }
  return {{"object", "list"}, {"data", data}};
}

void RolloutServer::HandleLoadLora(Body text, httplib::Response& res) {
  std::optional<json> body = ParseBody(text, res);
  if (!body) return;
  StatusOr<std::string> name =
      RequiredString(*body, "lora_name", kMaxLoraNameBytes);
  if (!name.ok()) return SendError(res, name.status());
  StatusOr<std::string> path =
      RequiredString(*body, "lora_path", kMaxLoraPathBytes);
  if (!path.ok()) return SendError(res, path.status());
  if (*name == options_.model_name) {
    return SendError(
        res, InvalidArgumentError("\"lora_name\" '" + *name +
                                  "' is the base model's name; pick another"));
  }
  StatusOr<std::string> evicted = engine_->LoadAdapter(*name, *path);
  if (!evicted.ok()) {
    // A truncated file or a PEFT feature not run here is the adapter's
    // fault, not the server's: 400, not 500 or 501.
    const StatusCode code = evicted.status().code();
    const bool bad_adapter =
        code == StatusCode::kDataLoss || code == StatusCode::kUnimplemented;
    return SendError(res, evicted.status(),
                     bad_adapter ? 400 : HttpStatusFor(evicted.status()));
  }
  json reply = {
      {"ok", true},
      {"lora_name", *name},
      {"message", "Success: LoRA adapter '" + *name + "' added successfully."}};
  if (!evicted->empty()) reply["evicted"] = *evicted;
  SendJson(res, reply);
}

void RolloutServer::HandleUnloadLora(Body text, httplib::Response& res) {
  std::optional<json> body = ParseBody(text, res);
  if (!body) return;
  StatusOr<std::string> name =
      RequiredString(*body, "lora_name", kMaxLoraNameBytes);
  if (!name.ok()) return SendError(res, name.status());
  if (Status s = engine_->UnloadAdapter(*name); !s.ok())
    return SendError(res, s);
  SendJson(res, {{"ok", true},
                 {"lora_name", *name},
                 {"message", "Success: LoRA adapter '" + *name +
                                 "' removed successfully."}});
}

StatusOr<std::string> RolloutServer::AdapterForModel(
    const std::string& model) const {
  if (model.empty() || model == options_.model_name) return std::string();
  if (engine_->AdapterVersion(model).ok()) return model;
  constexpr size_t kShown = 64;
  std::string served = "\"" + options_.model_name + "\"";
  for (const AdapterInfo& a : engine_->Adapters())
    served += ", \"" + a.name + "\"";
  return NotFoundError("model \"" + model.substr(0, kShown) +
                       (model.size() > kShown ? "..." : "") +
                       "\" is not served here; this server serves " + served);
}

}  // namespace rlrt
