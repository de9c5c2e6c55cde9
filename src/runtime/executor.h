// Executes a compiled graph: nodes in topological order, each with its kernel,
// values held in per-run frames so that runs are independent and thread-safe.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op.h"

namespace kiln {

class CompiledGraph {
 public:
  // Resolves schemas, infers shapes and creates kernels. Unsupported nodes are
  // all listed in one kiln::Error.
  static std::shared_ptr<const CompiledGraph> compile(const Graph& graph);

  const Graph& graph() const { return *graph_; }
  // Frees the data of the constants of `g` (the graph this was compiled
  // from) whose every reader's kernel owns a copy of it (packed weights);
  // they keep their type and shape, and reach kernels as tensors without
  // data. Returns the bytes freed.
  size_t release_owned_constants(Graph& g) const;
  // Runs with the given values for graph->inputs (by position; undefined
  // tensors for omitted optional inputs) and returns graph->outputs.
  // Kernels get `pool` (a subgraph: its outer frame's pool when null).
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, const Frame* outer, ThreadPool* pool = nullptr) const;

 private:
  friend class Frame;
  const Graph* graph_ = nullptr;
  std::vector<std::unique_ptr<Kernel>> kernels_;  // parallel to graph_->nodes
  std::vector<int> free_after_;  // per node: value indices whose last use it is
  std::vector<std::vector<int>> frees_;
};

// The values of one run of one graph. Subgraph frames point at their parent so
// outer-scope names resolve.
class Frame {
 public:
  Frame(const CompiledGraph& cg, const Frame* parent);
  const Tensor* lookup(const Value* v) const;
  std::vector<Tensor> slots;

 private:
  friend class CompiledGraph;
  const CompiledGraph& cg_;
  const Frame* parent_;
  ThreadPool* pool_ = nullptr;
};

}  // namespace kiln
