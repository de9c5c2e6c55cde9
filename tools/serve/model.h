// A served model: its sessions (one per instance), its request queue and the
// dynamic batcher that merges queued requests into one run.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kiln/session.h"
#include "model_config.h"
#include "protocol.h"

namespace kiln::serve {

// The server's compute threads: a run of a session with k threads holds k of
// them, so that instances of all models together never run more threads than
// the budget (no oversubscription when instances are added).
class ThreadBudget {
 public:
  explicit ThreadBudget(int threads) : free_(threads), total_(threads) {}
  void acquire(int k);
  void release(int k);
  int total() const { return total_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_, total_;
};

// Prometheus counters of one model (docs/serving.md names them).
struct ModelStats {
  std::atomic<uint64_t> success{0}, failure{0}, inferences{0}, executions{0};
  std::atomic<uint64_t> request_us{0}, queue_us{0}, compute_us{0};
  std::atomic<int64_t> pending{0};
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct ServeLimits {
  int64_t default_max_batch = 8;        // max_batch_size of a batchable model without config.pbtxt
  int64_t default_queue_delay_us = 0;   // its max_queue_delay_microseconds
  int64_t default_max_queue = 128;      // a model's queue bound when its config sets none
  int64_t request_timeout_us = 60'000'000;
};

class ServedModel {
 public:
  // Loads `path` (model.onnx or model.kiln) once per instance. kiln::Error on
  // a bad model or a config that does not fit it.
  ServedModel(std::string name, std::string version, const std::string& path, std::optional<ModelConfig> config,
              ThreadBudget& budget, const ServeLimits& limits);
  ~ServedModel();  // stop()s
  ServedModel(const ServedModel&) = delete;
  ServedModel& operator=(const ServedModel&) = delete;

  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  const ModelConfig& config() const { return config_; }
  int threads_per_instance() const { return threads_per_instance_; }
  ModelStats& stats() { return stats_; }

  // HttpError 400 naming what does not fit the model: input names, datatypes,
  // shapes (batch within max_batch_size), requested outputs.
  void validate(const InferRequest& request) const;

  // Called once, on a batcher thread, with the outputs (in the model's order)
  // or the error.
  using Done = std::function<void(NamedTensors outputs, std::exception_ptr error)>;
  // Queues a validated request. HttpError 503 when the queue is full or the
  // model is stopping; then `done` is not called.
  void submit(std::shared_ptr<const InferRequest> request, Done done);

  // Runs what is queued, then joins the batcher threads; later submits fail.
  void stop();

  // GET v2/models/{m}: {"name", "versions", "platform", "inputs", "outputs"}.
  std::string metadata_json() const;
  // GET v2/models/{m}/config: the configuration in use, as JSON.
  std::string config_json() const;

 private:
  struct Pending {
    std::shared_ptr<const InferRequest> request;
    Done done;
    std::chrono::steady_clock::time_point queued, deadline;
    int64_t batch = 1;  // its leading dim (1 when the model does not batch)
  };
  void instance_loop(size_t instance);
  std::vector<Pending> next_batch(std::unique_lock<std::mutex>& lock);
  void execute(const Session& session, std::vector<Pending>& batch);
  bool compatible(const Pending& a, const Pending& b) const;

  std::string name_, version_;
  ModelConfig config_;
  std::vector<std::unique_ptr<Session>> sessions_;
  int threads_per_instance_ = 1;
  ThreadBudget& budget_;
  ServeLimits limits_;
  ModelStats stats_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::serve
