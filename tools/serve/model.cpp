#include "model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace kiln::serve {

namespace {

using Clock = std::chrono::steady_clock;

uint64_t micros(Clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

const Tensor* find_input(const InferRequest& r, const std::string& name) {
  for (const auto& [n, t] : r.inputs)
    if (n == name) return &t;
  return nullptr;
}

// The rows of `parts` (tensors alike but for their leading dim) stacked.
Tensor concat_rows(const std::vector<const Tensor*>& parts) {
  Shape shape = parts[0]->shape();
  shape[0] = 0;
  for (const Tensor* p : parts) shape[0] += p->dim(0);
  Tensor out = Tensor::uninitialized(parts[0]->dtype(), shape);
  if (out.dtype() == DType::kString) {
    std::string* dst = out.data<std::string>();
    for (const Tensor* p : parts) dst = std::copy(p->data<std::string>(), p->data<std::string>() + p->numel(), dst);
    return out;
  }
  char* dst = static_cast<char*>(out.raw());
  for (const Tensor* p : parts) {
    std::memcpy(dst, p->raw(), p->nbytes());
    dst += p->nbytes();
  }
  return out;
}

// Rows [begin, begin + count) of `t`.
Tensor slice_rows(const Tensor& t, int64_t begin, int64_t count) {
  Shape shape = t.shape();
  shape[0] = count;
  Tensor out = Tensor::uninitialized(t.dtype(), shape);
  const int64_t row = t.dim(0) ? t.numel() / t.dim(0) : 0;
  if (t.dtype() == DType::kString) {
    const std::string* src = t.data<std::string>() + begin * row;
    std::copy(src, src + count * row, out.data<std::string>());
  } else if (out.nbytes()) {
    const size_t row_bytes = static_cast<size_t>(row) * dtype_size(t.dtype());
    std::memcpy(out.raw(), static_cast<const char*>(t.raw()) + static_cast<size_t>(begin) * row_bytes, out.nbytes());
  }
  return out;
}

std::string names_of(const std::vector<TensorConfig>& ts) {
  std::string s;
  for (const TensorConfig& t : ts) s += (s.empty() ? "" : ", ") + t.name;
  return s;
}

nlohmann::json tensors_json(const std::vector<TensorConfig>& ts, bool batched) {
  nlohmann::json out = nlohmann::json::array();
  for (const TensorConfig& t : ts) {
    std::vector<int64_t> shape = t.dims;
    if (batched) shape.insert(shape.begin(), -1);
    out.push_back({{"name", t.name}, {"datatype", kserve_datatype(t.dtype)}, {"shape", shape}});
  }
  return out;
}

}  // namespace

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
  }
  work_.notify_all();
  for (std::thread& t : runners_) t.join();
}

void Scheduler::add(ServedModel* model) {
  std::lock_guard lock(mu_);
  models_.push_back(model);
  // As many runners as this model's instances can run batches at once.
  const size_t wanted = static_cast<size_t>(
      std::min(model->config_.instance_count, std::max(1, threads_ / model->threads_per_instance_)));
  while (runners_.size() < wanted) runners_.emplace_back([this] { runner_loop(); });
}

void Scheduler::remove(ServedModel* model) { std::erase(models_, model); }

void Scheduler::runner_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    const auto now = Clock::now();
    ServedModel* pick = nullptr;
    std::optional<Clock::time_point> wake;
    for (ServedModel* m : models_) {
      if (m->threads_per_instance_ > free_threads_) continue;
      const std::optional<Clock::time_point> at = m->ready_at(now);
      if (!at) continue;
      if (*at > now) {
        if (!wake || *at < *wake) wake = at;
      } else if (!pick || m->queue_.front().queued < pick->queue_.front().queued) {
        pick = m;  // the model whose oldest request has waited longest
      }
    }
    if (!pick) {
      if (shutdown_) return;
      if (wake)
        work_.wait_until(lock, *wake);
      else
        work_.wait(lock);
      continue;
    }
    size_t instance = 0;
    std::vector<ServedModel::Pending> batch = pick->take_batch(instance);
    free_threads_ -= pick->threads_per_instance_;
    pick->running_++;
    lock.unlock();
    pick->execute(instance, batch);
    batch.clear();  // the answers' callbacks, released outside the lock
    lock.lock();
    free_threads_ += pick->threads_per_instance_;
    pick->busy_[instance] = false;
    pick->running_--;
    done_.notify_all();
    if (runners_.size() > 1) work_.notify_all();  // threads freed for another runner
  }
}

ServedModel::ServedModel(std::string name, std::string version, const std::string& path,
                         std::optional<ModelConfig> config, Scheduler& scheduler, const ServeLimits& limits)
    : name_(std::move(name)), version_(std::move(version)), scheduler_(scheduler), limits_(limits) {
  const int instances = config ? config->instance_count : 1;
  // The budget split between instances, so that all of them busy at once
  // use every thread and no more.
  threads_per_instance_ = std::max(1, scheduler.threads() / instances);
  SessionOptions options;
  options.threads = threads_per_instance_;
  for (int i = 0; i < instances; ++i) sessions_.push_back(std::make_unique<Session>(Session::load(path, options)));
  if (config) {
    config_ = std::move(*config);
    if (config_.name.empty()) config_.name = name_;
    if (config_.name != name_)
      throw Error(
          fmt::format("model '{}': config.pbtxt names it '{}'; the name must be the folder's", name_, config_.name));
    complete_model_config(config_, *sessions_[0]);
  } else {
    config_ = derive_model_config(name_, *sessions_[0], limits.default_max_batch);
    config_.max_queue_delay_us = limits.default_queue_delay_us;
  }
  if (config_.max_queue_size == 0) config_.max_queue_size = limits.default_max_queue;
  busy_.assign(sessions_.size(), false);
  scheduler_.add(this);
}

ServedModel::~ServedModel() { stop(); }

void ServedModel::stop() {
  std::unique_lock lock(scheduler_.mu_);
  if (stopped_) return;
  stopping_ = true;  // what is queued runs without waiting for companions
  scheduler_.work_.notify_all();
  scheduler_.done_.wait(lock, [&] { return queue_.empty() && running_ == 0; });
  scheduler_.remove(this);
  stopped_ = true;
}

void ServedModel::validate(const InferRequest& request) const {
  const bool batched = config_.max_batch_size > 0;
  int64_t batch = -1;
  for (const auto& input : request.inputs) {
    const std::string& name = input.first;
    const Tensor& t = input.second;
    auto it = std::find_if(config_.inputs.begin(), config_.inputs.end(),
                           [&](const TensorConfig& c) { return c.name == name; });
    if (it == config_.inputs.end())
      throw HttpError(
          400, fmt::format("model '{}' has no input '{}' (its inputs: {})", name_, name, names_of(config_.inputs)));
    if (t.dtype() != it->dtype)
      throw HttpError(400, fmt::format("input '{}' has datatype {}, model '{}' expects {}", name,
                                       kserve_datatype(t.dtype()), name_, kserve_datatype(it->dtype)));
    std::vector<int64_t> expected = it->dims;
    const Shape& shape = t.shape();
    auto shape_error = [&](const std::string& why) {
      std::vector<int64_t> full = expected;
      if (batched) full.insert(full.begin(), -1);
      return HttpError(400, fmt::format("input '{}' has shape [{}], model '{}' expects [{}]{}", name,
                                        fmt::join(shape, ","), name_, fmt::join(full, ","), why));
    };
    size_t offset = batched ? 1 : 0;
    if (batched) {
      if (shape.empty()) throw shape_error(" (the first dim is the batch)");
      if (shape[0] < 1 || shape[0] > config_.max_batch_size)
        throw shape_error(fmt::format(" (batch {} is outside 1..max_batch_size {})", shape[0], config_.max_batch_size));
      if (batch >= 0 && shape[0] != batch)
        throw HttpError(400, fmt::format("input '{}' has batch {}, another input has {}", name, shape[0], batch));
      batch = shape[0];
    }
    bool unknown_rank = expected.empty() && !batched;
    if (!unknown_rank) {
      if (shape.size() != expected.size() + offset) throw shape_error("");
      for (size_t i = 0; i < expected.size(); ++i)
        if (expected[i] >= 0 && shape[i + offset] != expected[i]) throw shape_error("");
    }
  }
  for (const TensorConfig& c : config_.inputs)
    if (!find_input(request, c.name))
      throw HttpError(400, fmt::format("the request lacks input '{}' of model '{}'", c.name, name_));
  for (const RequestedOutput& o : request.outputs)
    if (std::none_of(config_.outputs.begin(), config_.outputs.end(),
                     [&](const TensorConfig& c) { return c.name == o.name; }))
      throw HttpError(400, fmt::format("model '{}' has no output '{}' (its outputs: {})", name_, o.name,
                                       names_of(config_.outputs)));
}

void ServedModel::submit(std::shared_ptr<const InferRequest> request, Done done) {
  Pending p;
  p.queued = Clock::now();
  const int64_t timeout =
      request->timeout_us > 0 ? std::min(request->timeout_us, limits_.request_timeout_us) : limits_.request_timeout_us;
  p.deadline = p.queued + std::chrono::microseconds(timeout);
  if (config_.max_batch_size > 0 && !request->inputs.empty()) p.batch = request->inputs[0].second.dim(0);
  p.request = std::move(request);
  p.done = std::move(done);
  {
    std::lock_guard lock(scheduler_.mu_);
    if (stopping_) throw HttpError(503, fmt::format("model '{}' is being unloaded", name_));
    if (static_cast<int64_t>(queue_.size()) >= config_.max_queue_size)
      throw HttpError(
          503, fmt::format("model '{}': its queue is full ({} requests); retry later", name_, config_.max_queue_size));
    queue_.push_back(std::move(p));
    stats_->pending = static_cast<int64_t>(queue_.size());
  }
  scheduler_.work_.notify_one();
}

bool ServedModel::compatible(const Pending& a, const Pending& b) const {
  for (const auto& [name, t] : a.request->inputs) {
    const Tensor* u = find_input(*b.request, name);
    if (!u || u->rank() != t.rank() || !std::equal(t.shape().begin() + 1, t.shape().end(), u->shape().begin() + 1))
      return false;
  }
  return true;
}

int64_t ServedModel::batchable_rows() const {
  int64_t total = queue_.front().batch;
  for (auto it = queue_.begin() + 1; it != queue_.end() && total < config_.max_batch_size; ++it)
    if (total + it->batch <= config_.max_batch_size && compatible(queue_.front(), *it)) total += it->batch;
  return total;
}

std::optional<Clock::time_point> ServedModel::ready_at(Clock::time_point now) const {
  if (queue_.empty() || std::find(busy_.begin(), busy_.end(), false) == busy_.end()) return std::nullopt;
  if (config_.max_batch_size <= 0 || !config_.dynamic_batching || stopping_ || config_.max_queue_delay_us == 0)
    return now;
  const auto deadline = queue_.front().queued + std::chrono::microseconds(config_.max_queue_delay_us);
  if (deadline <= now) return now;
  // A full batch, or a preferred size, need not wait for the delay to end.
  const int64_t rows = batchable_rows();
  const auto& preferred = config_.preferred_batch_sizes;
  if (rows >= config_.max_batch_size || std::find(preferred.begin(), preferred.end(), rows) != preferred.end())
    return now;
  return deadline;
}

std::vector<ServedModel::Pending> ServedModel::take_batch(size_t& instance) {
  instance = static_cast<size_t>(std::find(busy_.begin(), busy_.end(), false) - busy_.begin());
  busy_[instance] = true;
  std::vector<Pending> batch;
  batch.push_back(std::move(queue_.front()));
  queue_.pop_front();
  int64_t total = batch[0].batch;
  if (config_.max_batch_size > 0 && config_.dynamic_batching) {
    for (auto it = queue_.begin(); it != queue_.end() && total < config_.max_batch_size;) {
      if (total + it->batch <= config_.max_batch_size && compatible(batch[0], *it)) {
        total += it->batch;
        batch.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  }
  stats_->pending = static_cast<int64_t>(queue_.size());
  return batch;
}

void ServedModel::execute(size_t instance, std::vector<Pending>& batch) {
  const Session& session = *sessions_[instance];
  const auto start = Clock::now();
  // Requests past their deadline are answered without running.
  std::erase_if(batch, [&](Pending& p) {
    if (start < p.deadline) return false;
    stats_->failure++;
    p.done({}, std::make_exception_ptr(HttpError(503, fmt::format("the request waited {} ms in model '{}''s queue, "
                                                                  "past its timeout",
                                                                  micros(start - p.queued) / 1000, name_))));
    return true;
  });
  if (batch.empty()) return;
  int64_t total = 0;
  for (const Pending& p : batch) total += p.batch;
  NamedTensors feed;
  if (batch.size() == 1) {
    feed = batch[0].request->inputs;
  } else {
    for (const auto& [name, t] : batch[0].request->inputs) {
      std::vector<const Tensor*> parts;
      for (const Pending& p : batch) parts.push_back(find_input(*p.request, name));
      feed.emplace_back(name, concat_rows(parts));
    }
  }
  std::vector<Tensor> outputs;
  std::exception_ptr error;
  try {
    outputs = session.run(feed);
  } catch (const std::exception& e) {
    error = std::make_exception_ptr(HttpError(400, fmt::format("model '{}' failed: {}", name_, e.what())));
  }
  const auto end = Clock::now();
  stats_->executions++;
  stats_->inferences += static_cast<uint64_t>(total);
  if (error && batch.size() > 1) {
    // One request's data can fail a merged run (an index out of range): run
    // each alone, so that only the requests at fault get the error.
    for (Pending& p : batch) {
      std::vector<Pending> one;
      one.push_back(std::move(p));
      execute(instance, one);
    }
    return;
  }
  const auto& infos = session.outputs();
  int64_t offset = 0;
  for (Pending& p : batch) {
    stats_->queue_us += micros(start - p.queued);
    stats_->compute_us += micros(end - start);
    if (error) {
      stats_->failure++;
      p.done({}, error);
      continue;
    }
    NamedTensors mine;
    try {
      for (size_t i = 0; i < outputs.size(); ++i) {
        const Tensor& t = outputs[i];
        if (batch.size() == 1) {
          mine.emplace_back(infos[i].name, t);
        } else {
          if (t.rank() < 1 || t.dim(0) != total)
            throw HttpError(500, fmt::format("model '{}': output '{}' has shape [{}], not the batch {} first", name_,
                                             infos[i].name, fmt::join(t.shape(), ","), total));
          mine.emplace_back(infos[i].name, slice_rows(t, offset, p.batch));
        }
      }
    } catch (...) {
      stats_->failure++;
      p.done({}, std::current_exception());
      continue;
    }
    offset += p.batch;
    p.done(std::move(mine), nullptr);
  }
}

std::string ServedModel::metadata_json() const {
  const bool batched = config_.max_batch_size > 0;
  nlohmann::json j = {{"name", name_},
                      {"versions", {version_}},
                      {"platform", sessions_[0]->is_engine() ? "kiln_engine" : "onnxruntime_onnx"},
                      {"inputs", tensors_json(config_.inputs, batched)},
                      {"outputs", tensors_json(config_.outputs, batched)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ServedModel::config_json() const {
  auto tensors = [](const std::vector<TensorConfig>& ts) {
    nlohmann::json out = nlohmann::json::array();
    for (const TensorConfig& t : ts)
      out.push_back({{"name", t.name}, {"data_type", "TYPE_" + kserve_datatype(t.dtype)}, {"dims", t.dims}});
    return out;
  };
  nlohmann::json j = {{"name", name_},
                      {"platform", sessions_[0]->is_engine() ? "kiln_engine" : "onnxruntime_onnx"},
                      {"max_batch_size", config_.max_batch_size},
                      {"input", tensors(config_.inputs)},
                      {"output", tensors(config_.outputs)},
                      {"instance_group", {{{"count", config_.instance_count}, {"kind", "KIND_CPU"}}}}};
  if (config_.dynamic_batching)
    j["dynamic_batching"] = {{"max_queue_delay_microseconds", config_.max_queue_delay_us},
                             {"preferred_batch_size", config_.preferred_batch_sizes},
                             {"default_queue_policy", {{"max_queue_size", config_.max_queue_size}}}};
  j["kiln"] = {{"threads_per_instance", threads_per_instance_}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kiln::serve
