#include "trainer_bridge/remote/reward_service.h"

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/json_limits.h"
#include "trainer_bridge/remote/http_timeouts.h"

namespace rlrt {
namespace {

std::string Excerpt(const std::string& body) {
  constexpr size_t kMax = 200;
  return body.size() <= kMax ? body : body.substr(0, kMax) + "...";
}

}  // namespace

StatusOr<std::unique_ptr<RewardService>> RewardService::Create(
    const RewardServiceOptions& options) {
  const std::string& url = options.url;
  if (url.rfind("http://", 0) != 0)
    return InvalidArgumentError("reward URL '" + url +
                                "' must start with http://");
  const size_t host_start = 7;
  const size_t slash = url.find('/', host_start);
  std::string base = url.substr(0, slash);
  std::string path = slash == std::string::npos ? "/" : url.substr(slash);
  if (base.size() == host_start)
    return InvalidArgumentError("reward URL '" + url + "' has no host");
  if (!(options.timeout_seconds > 0) || options.retries < 0 ||
      !(options.retry_pause_seconds >= 0) || options.max_reply_bytes < 16)
    return InvalidArgumentError(
        "reward service: timeout must be > 0, retries and pause >= 0");
  return std::unique_ptr<RewardService>(
      new RewardService(options, std::move(base), std::move(path)));
}

RewardService::Reply RewardService::Post(const std::string& body) const {
  ++attempts_;
  httplib::Client client(base_);
  SetHttpTimeouts(client, options_.timeout_seconds, options_.timeout_seconds,
                  options_.timeout_seconds);
  Reply reply;
  bool too_long = false;
  httplib::Request request;
  request.method = "POST";
  request.path = path_;
  request.body = body;
  request.set_header("Content-Type", "application/json");
  // The reply is read into a bounded buffer: a service answering without
  // end must not exhaust the trainer's memory.
  request.content_receiver = [&](const char* data, size_t length, uint64_t,
                                 uint64_t) {
    if (reply.body.size() + length >
        static_cast<size_t>(options_.max_reply_bytes)) {
      too_long = true;
      return false;
    }
    reply.body.append(data, length);
    return true;
  };
  httplib::Result result = client.send(request);
  if (too_long) {
    reply.transport_error = "the reply is longer than " +
                            std::to_string(options_.max_reply_bytes) + " bytes";
    reply.status = -1;
    return reply;
  }
  if (!result) {
    reply.transport_error = httplib::to_string(result.error());
    return reply;
  }
  reply.status = result->status;
  return reply;
}

StatusOr<std::vector<double>> RewardService::Score(
    const std::string& prompt, std::span<const std::string> completions,
    const std::string& answer) const {
  const std::string where = "reward service " + options_.url;
  nlohmann::json request = {{"prompt", prompt},
                            {"completions", nlohmann::json::array()},
                            {"answer", answer}};
  for (const std::string& c : completions) request["completions"].push_back(c);
  // Invalid UTF-8 from a sampled completion is replaced, not thrown on.
  const std::string body =
      request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  Reply reply;
  double pause = options_.retry_pause_seconds;
  for (int attempt = 0;; ++attempt) {
    reply = Post(body);
    const bool retryable = reply.status == 0 || reply.status >= 500;
    if (!retryable || attempt == options_.retries) break;
    std::this_thread::sleep_for(std::chrono::duration<double>(pause));
    pause *= 2;
  }
  const std::string tries =
      " (after " + std::to_string(options_.retries + 1) + " attempts)";
  if (reply.status == -1)
    return DataLossError(where + ": " + reply.transport_error);
  if (reply.status == 0)
    return UnavailableError(where + ": " + reply.transport_error + tries);
  if (reply.status >= 500)
    return UnavailableError(where + ": HTTP " + std::to_string(reply.status) +
                            tries + ": " + Excerpt(reply.body));
  if (reply.status != 200)
    return FailedPreconditionError(where + ": HTTP " +
                                   std::to_string(reply.status) + ": " +
                                   Excerpt(reply.body));
  RETURN_IF_ERROR(CheckJsonDepth(reply.body, where));
  const nlohmann::json j =
      nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return DataLossError(
        where + ": the reply is not a JSON object: " + Excerpt(reply.body));
  const auto rewards = j.find("rewards");
  if (rewards == j.end() || !rewards->is_array())
    return DataLossError(
        where + ": the reply has no \"rewards\" array: " + Excerpt(reply.body));
  if (rewards->size() != completions.size())
    return DataLossError(where + ": " + std::to_string(rewards->size()) +
                         " rewards for " + std::to_string(completions.size()) +
                         " completions");
  std::vector<double> out;
  for (size_t i = 0; i < rewards->size(); ++i) {
    const nlohmann::json& r = (*rewards)[i];
    if (!r.is_number() || !std::isfinite(r.get<double>()))
      return DataLossError(where + ": reward " + std::to_string(i) +
                           " is not a finite number: " + r.dump());
    out.push_back(r.get<double>());
  }
  return out;
}

StatusOr<std::vector<std::vector<int32_t>>> RemoteRewardTask::Prompts(
    int64_t index, int64_t batch_size) {
  batch_size_ = batch_size;
  return task_->Prompts(index, batch_size);
}

Reward RemoteRewardTask::Score(int64_t index, int64_t prompt,
                               const SampleOutput& completion) {
  StatusOr<std::vector<Reward>> one =
      ScoreGroup(index, prompt, std::span(&completion, 1));
  // Without a way to fail here, a NaN makes the learner refuse the batch.
  if (!one.ok()) return {std::numeric_limits<double>::quiet_NaN(), {}};
  return (*one)[0];
}

StatusOr<std::vector<Reward>> RemoteRewardTask::ScoreGroup(
    int64_t index, int64_t prompt, std::span<const SampleOutput> completions) {
  ASSIGN_OR_RETURN(std::vector<Reward> rewards,
                   task_->ScoreGroup(index, prompt, completions));
  const TaskExample& example = task_->ExampleAt(index, prompt, batch_size_);
  std::vector<std::string> texts;
  for (const SampleOutput& c : completions) texts.push_back(c.text);
  ASSIGN_OR_RETURN(std::vector<double> remote,
                   service_->Score(example.prompt, texts, example.gold));
  for (size_t i = 0; i < rewards.size(); ++i) {
    rewards[i].total += weight_ * remote[i];
    rewards[i].parts.emplace_back("remote", remote[i]);
  }
  return rewards;
}

}  // namespace rlrt
