// An external reward: a service that scores one prompt's completions at
// once. Each group is POSTed as JSON,
//   {"prompt": "...", "completions": ["...", ...], "answer": "..."}
// (the prompt as the dataset writes it, before the chat template; the
// answer is its final answer, normalised as the built-in rewards compare
// it: "72", "\frac{1}{2}", or "" when the dataset has none), and the
// reply must be {"rewards": [r, ...]}: one finite number per
// completion, in order. This is how a reward model or a code sandbox plugs
// into the RL loop without C++ (examples/reward_server.py is a reference).
//
// Transport failures, timeouts and 5xx replies are retried with a doubling
// pause; a 4xx or a malformed reply is not (the same request would fail
// the same way) and ends the run with an error naming the URL and what was
// wrong. Replies are read up to a size limit.
#ifndef RLRT_TRAINER_BRIDGE_REMOTE_REWARD_SERVICE_H_
#define RLRT_TRAINER_BRIDGE_REMOTE_REWARD_SERVICE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "trainer_bridge/rl_task.h"
#include "trainer_bridge/tasks/dataset_task.h"

namespace rlrt {

struct RewardServiceOptions {
  std::string url;                   // http://host:port/path
  double timeout_seconds = 30;       // Per attempt: connect, send, and reply.
  int retries = 2;                   // Attempts after the first.
  double retry_pause_seconds = 0.5;  // Doubles after each retry.
  int64_t max_reply_bytes = int64_t{1} << 20;
};

class RewardService {
 public:
  // InvalidArgument for a URL that is not http://host[:port][/path] or
  // options out of range.
  static StatusOr<std::unique_ptr<RewardService>> Create(
      const RewardServiceOptions& options);

  // One reward per completion, in order.
  StatusOr<std::vector<double>> Score(const std::string& prompt,
                                      std::span<const std::string> completions,
                                      const std::string& answer) const;
  // Requests sent, counting retries (for tests and metrics).
  int64_t attempts() const { return attempts_; }

 private:
  RewardService(const RewardServiceOptions& options, std::string base,
                std::string path)
      : options_(options), base_(std::move(base)), path_(std::move(path)) {}
  struct Reply {
    int status = 0;  // 0: no HTTP reply (transport error, timeout).
    std::string body;
    std::string transport_error;
  };
  Reply Post(const std::string& body) const;

  const RewardServiceOptions options_;
  const std::string base_;  // scheme://host:port
  const std::string path_;
  mutable int64_t attempts_ = 0;
};

// A dataset task whose rewards also come from a reward service: each
// completion's reward is the task's own (its built-in rewards; set their
// weights to 0 for the service's alone) plus weight x the service's,
// reported as the reward part "remote".
class RemoteRewardTask : public RlTask {
 public:
  RemoteRewardTask(DatasetTask* task, std::unique_ptr<RewardService> service,
                   double weight)
      : task_(task), service_(std::move(service)), weight_(weight) {}

  StatusOr<std::vector<std::vector<int32_t>>> Prompts(
      int64_t index, int64_t batch_size) override;
  Reward Score(int64_t index, int64_t prompt,
               const SampleOutput& completion) override;
  StatusOr<std::vector<Reward>> ScoreGroup(
      int64_t index, int64_t prompt,
      std::span<const SampleOutput> completions) override;

 private:
  DatasetTask* const task_;
  const std::unique_ptr<RewardService> service_;
  const double weight_;
  int64_t batch_size_ = 0;
};

}  // namespace rlrt

#endif  // RLRT_TRAINER_BRIDGE_REMOTE_REWARD_SERVICE_H_
