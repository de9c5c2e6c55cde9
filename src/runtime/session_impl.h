// What a kiln::Session holds, shared by the ONNX path (runtime/session.cpp)
// and the engine path (engine/load.cpp).
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

// Infers types; an UnsupportedError listing every node kiln cannot run.
void infer_supported(Graph& g, const std::string& source);
// Runs the graph optimizer at options.opt_level (the passes re-infer types).
void optimize_graph(Graph& g, const SessionOptions& options);
// Fills impl's inputs, outputs and executed nodes from its graph.
void describe_graph(Session::Impl& impl);
// Whether the graph optimizer should plan memory (options and KILN_ARENA).
bool memory_planner_on(const SessionOptions& options);

}  // namespace kiln
