// A model repository in Triton's layout: DIR/<model>/<version>/model.onnx
// (or model.kiln) and an optional DIR/<model>/config.pbtxt. The highest
// version of each model is served.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model.h"

namespace kiln::serve {

class Repository {
 public:
  using Log = std::function<void(const std::string&)>;
  Repository(std::string dir, Scheduler& scheduler, ServeLimits limits, Log log);
  ~Repository();

  // Loads every model of the folder. A model that fails is reported (log and
  // index) and the others still serve.
  void load_all();
  // The model if it is ready (version "" = the served one). HttpError 404 for
  // an unknown model or version, 503 for one that is not ready.
  std::shared_ptr<ServedModel> get(const std::string& name, const std::string& version) const;
  // Loads (or reloads) a model; HttpError 404 when it has no folder, 400 with
  // the reason when it fails to load.
  void load(const std::string& name);
  // Unloads it: queued requests still run; new ones get 404. HttpError 404
  // when it is not loaded.
  void unload(const std::string& name);
  // POST v2/repository/index: every model of the folder and its state.
  std::string index_json() const;
  std::vector<std::shared_ptr<ServedModel>> ready_models() const;
  // Finishes queued work of every model.
  void stop_all();

 private:
  struct Entry {
    std::string state = "UNAVAILABLE";  // READY, UNAVAILABLE, LOADING
    std::string reason, version;
    std::shared_ptr<ServedModel> model;
  };
  std::vector<std::string> model_folders() const;
  std::shared_ptr<ServedModel> load_model(const std::string& name, std::string& version) const;

  std::string dir_;
  Scheduler& scheduler_;
  ServeLimits limits_;
  Log log_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace kiln::serve
