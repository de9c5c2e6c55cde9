// The run-time side of memory planning. A graph's first run for a given set
// of input shapes is a recording run: tensors are heap-allocated as usual and
// a LifetimeRecorder notes, for each value, whether its kernel wrote it fresh
// through KernelContext::output() or passed through (a view of) an earlier
// value. make_run_plan turns that into arena offsets (planner/arena_plan.h)
// with each block kept live until the last use of every view of it. Later
// runs with the same input shapes borrow a RunState (an arena plus the
// executor's per-run vectors) from the plan's pool, so that the steady state
// allocates no tensor data. See docs/memory.md.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "ir/graph.h"
#include "ir/op.h"
#include "kiln/tensor.h"

namespace kiln {

// Alignment of the arena and of every block in it.
inline constexpr size_t kArenaAlignment = 64;

// What the recording run saw of one value.
struct ValueRecord {
  int producer = -1;   // node index; -1 when not produced by a node
  bool fresh = false;  // written by its kernel through output(), not a view
  size_t bytes = 0;
  int root = -1;  // the fresh value whose memory it lies in (itself when fresh)
};

class LifetimeRecorder {
 public:
  explicit LifetimeRecorder(size_t num_values) : values(num_values) {}
  // Output `value` of node `node` is `t`; from_output: made by output().
  void produced(int node, int value, const Tensor& t, bool from_output);
  // The run dropped its reference to `value`.
  void released(int value);

  std::vector<ValueRecord> values;

 private:
  // Memory of fresh values still referenced: begin -> (end, root). Dead
  // ranges are dropped so that a later allocation at a reused address is not
  // mistaken for a view.
  std::map<const std::byte*, std::pair<const std::byte*, int>> live_;
  std::map<int, int> live_members_;  // root -> number of live values in it
};

// Per-run state reused across runs: never used by two runs at once.
struct RunState {
  // A tensor's storage: refused with an error beyond this machine's memory
  // (the plan may come from an engine file), memory-mapped when large.
  Tensor arena;
  std::vector<Tensor> slots;
  std::vector<const Tensor*> in_ptrs;
  std::vector<Tensor> outs;
  std::vector<OutputBlock> blocks;
  RunScratch kernel_scratch;  // KernelContext::scratch() of this run's kernels
};

class RunPlan {
 public:
  std::vector<int64_t> offset;  // per value index: byte offset in the arena, -1 = not in the arena
  std::vector<size_t> bytes;    // per value index: size of its block
  std::vector<int> root;        // per value index: the planned value whose block it may view, or -1
  size_t arena_bytes = 0;
  size_t planned_bytes = 0;  // sum of the planned blocks (the arena without reuse)

  // A RunState whose arena holds arena_bytes; give it back with release().
  std::unique_ptr<RunState> acquire();
  void release(std::unique_ptr<RunState> state);

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<RunState>> free_;
};

// Builds the plan from a recording run. last_read: per value, the index of
// the last node that reads it (-1: none); is_output: per value, whether it is
// a graph output (the caller owns those after the run, so neither they nor
// any block they view may live in the arena).
std::shared_ptr<RunPlan> make_run_plan(const std::vector<ValueRecord>& values, const std::vector<int>& last_read,
                                       const std::vector<bool>& is_output);

// Whether t, an output of value v in a run with `plan`, may stay where it is:
// in v's own block, in the block of v's recorded root, or outside the arena.
bool arena_output_ok(const RunPlan& plan, const std::byte* arena, int v, const Tensor& t);

}  // namespace kiln
