#include "repository.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kiln::serve {

namespace fs = std::filesystem;

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() < 19 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Repository::Repository(std::string dir, Scheduler& scheduler, ServeLimits limits, Log log)
    : dir_(std::move(dir)), scheduler_(scheduler), limits_(limits), log_(std::move(log)) {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) throw Error(fmt::format("{}: the model repository is not a folder", dir_));
}

Repository::~Repository() { stop_all(); }

std::vector<std::string> Repository::model_folders() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || !e.is_directory(ec)) continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::shared_ptr<ServedModel> Repository::load_model(const std::string& name, std::string& version) const {
  const fs::path folder = fs::path(dir_) / name;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw HttpError(404, fmt::format("{}: no such model folder", folder.string()));
  // The highest numbered version folder holding a model file.
  int64_t best = -1;
  fs::path model_path;
  for (const fs::directory_entry& e : fs::directory_iterator(folder, ec)) {
    std::string v = e.path().filename().string();
    if (!e.is_directory(ec) || !all_digits(v)) continue;
    for (const char* file : {"model.kiln", "model.onnx"}) {
      if (fs::is_regular_file(e.path() / file, ec) && std::stoll(v) > best) {
        best = std::stoll(v);
        model_path = e.path() / file;
      }
    }
  }
  if (best < 0)
    throw HttpError(
        400, fmt::format("{}: no version folder (1/, 2/, ...) holds a model.onnx or model.kiln", folder.string()));
  version = std::to_string(best);
  std::optional<ModelConfig> config;
  const fs::path config_path = folder / "config.pbtxt";
  if (fs::exists(config_path, ec)) {
    std::ifstream in(config_path);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) throw Error(fmt::format("{}: cannot read", config_path.string()));
    config = parse_model_config(text.str(), config_path.string());
  }
  return std::make_shared<ServedModel>(name, version, model_path.string(), std::move(config), scheduler_, limits_);
}

void Repository::load_all() {
  for (const std::string& name : model_folders()) {
    try {
      load(name);
    } catch (const std::exception&) {
      // load() logged it and recorded it in the index.
    }
  }
}

void Repository::load(const std::string& name) {
  {
    std::lock_guard lock(mu_);
    entries_[name].state = "LOADING";
  }
  std::string version;
  std::shared_ptr<ServedModel> model, old;
  try {
    model = load_model(name, version);
  } catch (const std::exception& e) {
    std::lock_guard lock(mu_);
    Entry& entry = entries_[name];
    // A failed reload keeps serving what was loaded.
    entry.state = entry.model ? "READY" : "UNAVAILABLE";
    entry.reason = e.what();
    log_(fmt::format("model '{}' failed to load: {}", name, e.what()));
    throw;
  }
  const ModelConfig& c = model->config();
  log_(fmt::format("model '{}' version {} ready: max_batch_size {}, dynamic batching {}, {} instance(s) x {} thread(s)",
                   name, version, c.max_batch_size,
                   c.dynamic_batching ? fmt::format("on (max_queue_delay {} us)", c.max_queue_delay_us) : "off",
                   c.instance_count, model->threads_per_instance()));
  {
    std::lock_guard lock(mu_);
    Entry& entry = entries_[name];
    old = std::move(entry.model);
    entry = Entry{"READY", "", version, std::move(model)};
  }
  if (old) old->stop();
}

void Repository::unload(const std::string& name) {
  std::shared_ptr<ServedModel> model;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end() || !it->second.model) throw HttpError(404, fmt::format("model '{}' is not loaded", name));
    model = std::move(it->second.model);
    it->second = Entry{"UNAVAILABLE", "unloaded", model->version(), nullptr};
  }
  model->stop();
  log_(fmt::format("model '{}' unloaded", name));
}

std::shared_ptr<ServedModel> Repository::get(const std::string& name, const std::string& version) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) throw HttpError(404, fmt::format("unknown model '{}'", name));
  const Entry& e = it->second;
  if (!version.empty() && version != e.version)
    throw HttpError(404, fmt::format("model '{}' has no version '{}' being served{}", name, version,
                                     e.version.empty() ? "" : " (it serves " + e.version + ")"));
  if (!e.model || e.state != "READY")
    throw HttpError(
        503, fmt::format("model '{}' is not ready ({}){}", name, e.state, e.reason.empty() ? "" : ": " + e.reason));
  return e.model;
}

std::string Repository::index_json() const {
  std::map<std::string, Entry> entries;
  {
    std::lock_guard lock(mu_);
    entries = entries_;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const std::string& name : model_folders()) {
    auto it = entries.find(name);
    nlohmann::json m = {{"name", name}};
    if (it == entries.end()) {
      m["state"] = "UNAVAILABLE";
      m["reason"] = "not loaded";
    } else {
      m["state"] = it->second.state;
      if (!it->second.version.empty()) m["version"] = it->second.version;
      if (!it->second.reason.empty()) m["reason"] = it->second.reason;
    }
    out.push_back(std::move(m));
  }
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::shared_ptr<ServedModel>> Repository::ready_models() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<ServedModel>> out;
  for (const auto& [name, e] : entries_)
    if (e.model) out.push_back(e.model);
  return out;
}

void Repository::stop_all() {
  for (const std::shared_ptr<ServedModel>& m : ready_models()) m->stop();
}

}  // namespace kiln::serve
