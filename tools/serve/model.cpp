#include "model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace kiln::serve {

void ThreadBudget::acquire(int k) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return free_ >= k; });
  free_ -= k;
}

void ThreadBudget::release(int k) {
  {
    std::lock_guard lock(mu_);
    free_ += k;
  }
  cv_.notify_all();
}

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

ServedModel::ServedModel(std::string name, std::string version, const std::string& path,
                         std::optional<ModelConfig> config, ThreadBudget& budget, const ServeLimits& limits)
    : name_(std::move(name)), version_(std::move(version)), budget_(budget), limits_(limits) {
  const int instances = config ? config->instance_count : 1;
  // The budget split between instances, so that all of them busy at once
  // use every thread and no more.
  threads_per_instance_ = std::max(1, budget.total() / instances);
  SessionOptions options;
  options.threads = threads_per_instance_;
  for (int i = 0; i < instances; ++i) sessions_.push_back(std::make_unique<Session>(Session::load(path, options)));
  if (config) {
    config_ = std::move(*config);
    if (config_.name.empty()) config_.name = name_;
    if (config_.name != name_)
      throw Error(fmt::format("model '{}': config.pbtxt names it '{}'; the name must be the folder's", name_,
                              config_.name));
    complete_model_config(config_, *sessions_[0]);
  } else {
    config_ = derive_model_config(name_, *sessions_[0], limits.default_max_batch);
    config_.max_queue_delay_us = limits.default_queue_delay_us;
  }
  if (config_.max_queue_size == 0) config_.max_queue_size = limits.default_max_queue;
  for (size_t i = 0; i < sessions_.size(); ++i) threads_.emplace_back([this, i] { instance_loop(i); });
}

ServedModel::~ServedModel() { stop(); }

void ServedModel::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void ServedModel::validate(const InferRequest& request) const {
  const bool batched = config_.max_batch_size > 0;
  int64_t batch = -1;
  for (const auto& [name, t] : request.inputs) {
    auto it = std::find_if(config_.inputs.begin(), config_.inputs.end(), [&](const TensorConfig& c) { return c.name == name; });
    if (it == config_.inputs.end())
      throw HttpError(400, fmt::format("model '{}' has no input '{}' (its inputs: {})", name_, name, names_of(config_.inputs)));
    if (t.dtype() != it->dtype)
      throw HttpError(400, fmt::format("input '{}' has datatype {}, model '{}' expects {}", name, kserve_datatype(t.dtype()),
                                       name_, kserve_datatype(it->dtype)));
    std::vector<int64_t> expected = it->dims;
    const Shape& shape = t.shape();
    auto shape_error = [&](const std::string& why) {
      std::vector<int64_t> full = expected;
      if (batched) full.insert(full.begin(), -1);
      return HttpError(400, fmt::format("input '{}' has shape [{}], model '{}' expects [{}]{}", name, fmt::join(shape, ","),
                                        name_, fmt::join(full, ","), why));
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
    if (!find_input(request, c.name)) throw HttpError(400, fmt::format("the request lacks input '{}' of model '{}'", c.name, name_));
  for (const RequestedOutput& o : request.outputs)
    if (std::none_of(config_.outputs.begin(), config_.outputs.end(), [&](const TensorConfig& c) { return c.name == o.name; }))
      throw HttpError(400, fmt::format("model '{}' has no output '{}' (its outputs: {})", name_, o.name, names_of(config_.outputs)));
}

void ServedModel::submit(std::shared_ptr<const InferRequest> request, Done done) {
  Pending p;
  p.queued = Clock::now();
  const int64_t timeout = request->timeout_us > 0 ? std::min(request->timeout_us, limits_.request_timeout_us) : limits_.request_timeout_us;
  p.deadline = p.queued + std::chrono::microseconds(timeout);
  if (config_.max_batch_size > 0 && !request->inputs.empty()) p.batch = request->inputs[0].second.dim(0);
  p.request = std::move(request);
  p.done = std::move(done);
  {
    std::lock_guard lock(mu_);
    if (stopping_) throw HttpError(503, fmt::format("model '{}' is being unloaded", name_));
    if (static_cast<int64_t>(queue_.size()) >= config_.max_queue_size)
      throw HttpError(503, fmt::format("model '{}': its queue is full ({} requests); retry later", name_, config_.max_queue_size));
    queue_.push_back(std::move(p));
    stats_.pending = static_cast<int64_t>(queue_.size());
  }
  cv_.notify_one();
}

bool ServedModel::compatible(const Pending& a, const Pending& b) const {
  for (const auto& [name, t] : a.request->inputs) {
    const Tensor* u = find_input(*b.request, name);
    if (!u || u->rank() != t.rank() || !std::equal(t.shape().begin() + 1, t.shape().end(), u->shape().begin() + 1))
      return false;
  }
  return true;
}

// The next requests to run together: the oldest, and (dynamic batching)
// those queued after it with the same shapes but for the batch dim, up to
// max_batch_size, waiting for more until the oldest has waited
// max_queue_delay. A preferred batch size reached ends the wait early.
std::vector<ServedModel::Pending> ServedModel::next_batch(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
  std::vector<Pending> batch;
  if (queue_.empty()) return batch;
  batch.push_back(std::move(queue_.front()));
  queue_.pop_front();
  int64_t total = batch[0].batch;
  if (config_.max_batch_size > 0 && config_.dynamic_batching) {
    const auto deadline = batch[0].queued + std::chrono::microseconds(config_.max_queue_delay_us);
    for (;;) {
      for (auto it = queue_.begin(); it != queue_.end() && total < config_.max_batch_size;) {
        if (total + it->batch <= config_.max_batch_size && compatible(batch[0], *it)) {
          total += it->batch;
          batch.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      const bool preferred = std::find(config_.preferred_batch_sizes.begin(), config_.preferred_batch_sizes.end(),
                                       total) != config_.preferred_batch_sizes.end();
      if (total >= config_.max_batch_size || preferred || stopping_ || Clock::now() >= deadline) break;
      cv_.wait_until(lock, deadline);
    }
  }
  stats_.pending = static_cast<int64_t>(queue_.size());
  return batch;
}

void ServedModel::instance_loop(size_t instance) {
  std::unique_lock lock(mu_);
  for (;;) {
    std::vector<Pending> batch = next_batch(lock);
    if (batch.empty()) return;  // stopping, and the queue is empty
    lock.unlock();
    // Another instance may gather while this one runs.
    cv_.notify_one();
    execute(*sessions_[instance], batch);
    lock.lock();
  }
}

void ServedModel::execute(const Session& session, std::vector<Pending>& batch) {
  const auto start = Clock::now();
  // Requests past their deadline are answered without running.
  std::erase_if(batch, [&](Pending& p) {
    if (start < p.deadline) return false;
    stats_.failure++;
    p.done({}, std::make_exception_ptr(HttpError(503, fmt::format("the request waited {} ms in model '{}''s queue, "
                                                                  "past its timeout", micros(start - p.queued) / 1000, name_))));
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
  budget_.acquire(threads_per_instance_);
  try {
    outputs = session.run(feed);
  } catch (const std::exception& e) {
    error = std::make_exception_ptr(HttpError(400, fmt::format("model '{}' failed: {}", name_, e.what())));
  }
  budget_.release(threads_per_instance_);
  const auto end = Clock::now();
  stats_.executions++;
  stats_.inferences += static_cast<uint64_t>(total);
  if (error && batch.size() > 1) {
    // One request's data can fail a merged run (an index out of range): run
    // each alone, so that only the requests at fault get the error.
    for (Pending& p : batch) {
      std::vector<Pending> one;
      one.push_back(std::move(p));
      execute(session, one);
    }
    return;
  }
  const auto& infos = session.outputs();
  int64_t offset = 0;
  for (Pending& p : batch) {
    stats_.queue_us += micros(start - p.queued);
    stats_.compute_us += micros(end - start);
    if (error) {
      stats_.failure++;
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
      stats_.failure++;
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
    for (const TensorConfig& t : ts) out.push_back({{"name", t.name}, {"data_type", "TYPE_" + kserve_datatype(t.dtype)}, {"dims", t.dims}});
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
