// Executes a compiled graph: nodes in topological order, each with its kernel,
// values held in per-run frames so that runs are independent and thread-safe.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"
#include "ir/op.h"

namespace kiln {

class RunPlan;  // runtime/arena.h
struct RunState;
class LifetimeRecorder;
struct NodeTime {
  int64_t start_ns = 0, end_ns = 0;
};
// A node inside an If/Loop/Scan body: its time summed over the calls of one
// run (a Loop body's nodes run once per iteration, an untaken branch's not
// at all).
struct BodyNodeTime {
  int64_t total_ns = 0;
  int64_t calls = 0;
};
// The timing of one top-level run: each top-level node's start and end,
// parallel to graph().nodes, and the body nodes that ran, by node. Bodies
// run on the thread of the node that holds them (kernels call them one at a
// time), so one run's records need no lock.
struct NodeTimes {
  std::vector<NodeTime> nodes;
  std::unordered_map<const Node*, BodyNodeTime> bodies;
};

class CompiledGraph {
 public:
  // Resolves schemas, infers shapes and creates kernels. Unsupported nodes are
  // all listed in one kiln::Error. plan_memory: top-level runs place their
  // intermediate tensors in a planned arena (runtime/arena.h).
  // `free_owned` (the same graph, mutable): frees the data of its constants
  // whose every reader's kernel owns a copy (packed weights), as soon as the
  // last such kernel is created; they keep their type and shape and reach
  // kernels as tensors without data.
  // `packed` (engine load): what kernels prepared at build, by node.
  using PackedLookup = std::function<const PackedState*(const Node&)>;
  static std::shared_ptr<const CompiledGraph> compile(const Graph& graph, bool plan_memory = false,
                                                      Graph* free_owned = nullptr, const PackedLookup& packed = {});
  ~CompiledGraph();

  const Graph& graph() const { return *graph_; }
  // Bytes of constants freed by compile (free_owned).
  size_t freed_constant_bytes() const { return freed_constant_bytes_; }
  // Runs with the given values for graph->inputs (by position; undefined
  // tensors for omitted optional inputs) and returns graph->outputs.
  // Kernels get `pool` (a subgraph: its outer frame's pool when null).
  // With `times` (top-level runs only): each node's start and end on
  // std::chrono::steady_clock, in ns, and the time of every node its bodies
  // ran (subgraph runs add to their outer frame's `times`).
  // `profile` >= 0: a top-level run with the memory plan of that profile
  // (add_profile_plan), whose shapes the caller checked the inputs fit.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, const Frame* outer, ThreadPool* pool = nullptr,
                          NodeTimes* times = nullptr, int profile = -1) const;

  // The kernel of node i (graph().nodes order).
  const Kernel& kernel(size_t i) const { return *kernels_[i]; }

  // Engine profiles. A recording run (heap-allocated) whose memory plan
  // (runtime/arena.h) then serves every run of the profile: made at the
  // profile's max shapes, each tensor's block is large enough for any
  // shape inside it (a larger one would go to the heap).
  std::shared_ptr<RunPlan> record_plan(const std::vector<Tensor>& inputs, ThreadPool* pool) const;
  // Registers a plan as profile number plan_count(); before any run.
  void add_profile_plan(std::shared_ptr<RunPlan> plan);
  size_t profile_count() const { return profile_plans_.size(); }
  size_t profile_arena_bytes(size_t p) const;

  // Of the memory plans made so far (one per set of input shapes), the one
  // with the largest arena: its size and the sum of the tensors placed in it.
  struct MemoryStats {
    size_t arena_bytes = 0;
    size_t planned_bytes = 0;
  };
  MemoryStats memory_stats() const;

 private:
  friend class Frame;
  std::vector<Tensor> run_frame(const std::vector<Tensor>& inputs, const Frame* outer, ThreadPool* pool,
                                const RunPlan* plan, RunState* state, LifetimeRecorder* recorder,
                                NodeTimes* times) const;
  std::vector<Tensor> run_planned(const std::vector<Tensor>& inputs, ThreadPool* pool, NodeTimes* times) const;
  std::vector<Tensor> run_with_plan(const std::vector<Tensor>& inputs, ThreadPool* pool, NodeTimes* times,
                                    RunPlan& plan) const;

  const Graph* graph_ = nullptr;
  size_t freed_constant_bytes_ = 0;
  // Test-only fault injection (KILN_TEST_PERTURB_NODE=NAME at compile): the
  // node whose first float output every run perturbs, so that tests can prove
  // kiln compare --per-layer finds a broken kernel. -1: none.
  int perturbed_node_ = -1;
  std::vector<std::unique_ptr<Kernel>> kernels_;  // parallel to graph_->nodes
  std::vector<std::vector<int>> frees_;           // per node: value indices whose last use it is
  std::vector<int> last_read_;                    // per value: the last node reading it, -1 = none
  std::vector<bool> is_output_;                   // per value: a graph output
  bool plan_memory_ = false;
  // Plans by input signature (dtypes and shapes), made at the first run with
  // those shapes; at most kMaxPlans, later signatures run unplanned.
  static constexpr size_t kMaxPlans = 8;
  mutable std::mutex plans_mu_;
  mutable std::map<std::vector<int64_t>, std::shared_ptr<RunPlan>> plans_;
  std::vector<std::shared_ptr<RunPlan>> profile_plans_;
};

// The values of one run of one graph. Subgraph frames point at their parent so
// outer-scope names resolve.
class Frame {
 public:
  Frame(const CompiledGraph& cg, const Frame* parent, std::vector<Tensor> slots = {});
  const Tensor* lookup(const Value* v) const;
  std::vector<Tensor> slots;  // empty for initializers not overridden by a feed

 private:
  friend class CompiledGraph;
  const CompiledGraph& cg_;
  const Frame* parent_;
  ThreadPool* pool_ = nullptr;
  NodeTimes* times_ = nullptr;  // a profiled run's: subgraph frames add their nodes' times
};

}  // namespace kiln
