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
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kiln/session.h"
#include "model_config.h"
#include "protocol.h"

namespace kiln::serve {

class ServedModel;

// The server's compute threads and the runner threads that use them. Every
// model's batches run on a few runner threads, not on a thread per model:
// libgomp gives each thread that starts parallel regions a team of its own,
// and once the process holds more OpenMP threads than cores it stops letting
// idle ones spin (throttled to ~100 spins), so every region pays for waking
// sleeping threads. Measured on digits at one client: 73 us round trip,
// 227 us once a second model had run from another thread.
//
// A batch of a session with k threads holds k of the budget while it runs,
// so that instances of all models together never run more threads than the
// budget. There are as many runners as batches can run at once
// (budget / threads per instance, the largest over the models), each running
// whichever model's batch is ready, oldest first; with one instance per
// model that is one runner, and one OpenMP team for the whole server.
class Scheduler {
 public:
  explicit Scheduler(int threads) : threads_(threads), free_threads_(threads) {}
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  int threads() const { return threads_; }

 private:
  friend class ServedModel;
  void add(ServedModel* model);     // starts the runners its instances need
  void remove(ServedModel* model);  // once it has nothing queued or running
  void runner_loop();

  std::mutex mu_;                 // guards this and every model's queue and instances
  std::condition_variable work_;  // runners: a request arrived, a batch ended, a deadline may have passed
  std::condition_variable done_;  // a batch ended (ServedModel::stop waits on it)
  std::vector<ServedModel*> models_;
  std::vector<std::thread> runners_;
  int threads_, free_threads_;
  bool shutdown_ = false;
};

// Prometheus counters of one model (docs/serving.md names them).
struct ModelStats {
  std::atomic<uint64_t> success{0}, failure{0}, inferences{0}, executions{0};
  std::atomic<uint64_t> request_us{0}, queue_us{0}, compute_us{0};
  std::atomic<int64_t> pending{0};
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct ServeLimits {
  int64_t default_max_batch = 8;       // max_batch_size of a batchable model without config.pbtxt
  int64_t default_queue_delay_us = 0;  // its max_queue_delay_microseconds
  int64_t default_max_queue = 128;     // a model's queue bound when its config sets none
  int64_t request_timeout_us = 60'000'000;
};

class ServedModel {
 public:
  // Loads `path` (model.onnx or model.kiln) once per instance. kiln::Error on
  // a bad model or a config that does not fit it.
  ServedModel(std::string name, std::string version, const std::string& path, std::optional<ModelConfig> config,
              Scheduler& scheduler, const ServeLimits& limits);
  ~ServedModel();  // stop()s
  ServedModel(const ServedModel&) = delete;
  ServedModel& operator=(const ServedModel&) = delete;

  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  const ModelConfig& config() const { return config_; }
  int threads_per_instance() const { return threads_per_instance_; }
  ModelStats& stats() { return *stats_; }
  // Shared by answers still being written after the model is unloaded.
  std::shared_ptr<ModelStats> shared_stats() const { return stats_; }

  // HttpError 400 naming what does not fit the model: input names, datatypes,
  // shapes (batch within max_batch_size), requested outputs.
  void validate(const InferRequest& request) const;

  // Called once, on a runner thread, with the outputs (in the model's order)
  // or the error.
  using Done = std::function<void(NamedTensors outputs, std::exception_ptr error)>;
  // Queues a validated request. HttpError 503 when the queue is full or the
  // model is stopping; then `done` is not called.
  void submit(std::shared_ptr<const InferRequest> request, Done done);

  // Runs what is queued and waits for it; later submits fail.
  void stop();

  // GET v2/models/{m}: {"name", "versions", "platform", "inputs", "outputs"}.
  std::string metadata_json() const;
  // GET v2/models/{m}/config: the configuration in use, as JSON.
  std::string config_json() const;

 private:
  friend class Scheduler;
  struct Pending {
    std::shared_ptr<const InferRequest> request;
    Done done;
    std::chrono::steady_clock::time_point queued, deadline;
    int64_t batch = 1;  // its leading dim (1 when the model does not batch)
  };
  // Under the scheduler's lock. When a batch can start: now, or when the
  // oldest request's max_queue_delay ends (nullopt: nothing queued or no
  // instance free).
  std::optional<std::chrono::steady_clock::time_point> ready_at(std::chrono::steady_clock::time_point now) const;
  // Under the scheduler's lock: the oldest request and (dynamic batching)
  // those queued after it with the same shapes but for the batch dim, up to
  // max_batch_size; the instance to run them on is marked busy.
  std::vector<Pending> take_batch(size_t& instance);
  void execute(size_t instance, std::vector<Pending>& batch);
  bool compatible(const Pending& a, const Pending& b) const;
  int64_t batchable_rows() const;  // rows of the batch take_batch would take now

  std::string name_, version_;
  ModelConfig config_;
  std::vector<std::unique_ptr<Session>> sessions_;
  std::vector<bool> busy_;  // per instance, under the scheduler's lock
  int running_ = 0;
  int threads_per_instance_ = 1;
  Scheduler& scheduler_;
  ServeLimits limits_;
  std::shared_ptr<ModelStats> stats_ = std::make_shared<ModelStats>();
  std::deque<Pending> queue_;
  bool stopping_ = false, stopped_ = false;
};

}  // namespace kiln::serve
