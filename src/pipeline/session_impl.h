// What a kiln::Session holds, made by the ONNX path (pipeline/prepare.cpp)
// or the engine path (pipeline/load_engine.cpp).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "engine/engine_file.h"
#include "kiln/session.h"
#include "onnx/import.h"
#include "runtime/executor.h"

namespace kiln {

struct Session::Impl {
  Model model;
  std::shared_ptr<const CompiledGraph> compiled;
  std::vector<TensorInfo> inputs, outputs;
  std::unique_ptr<ThreadPool> pool;
  std::vector<Session::ExecutedNode> executed;
  // Engines only.
  std::shared_ptr<const engine::EngineFile> engine;
  std::vector<ShapeProfile> profiles;
  int fixed_profile = -1;
  std::vector<std::string> warnings;
};

}  // namespace kiln
