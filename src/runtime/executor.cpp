#include "runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <new>
#include <unordered_map>

#include "core/settings.h"
#include "ir/infer.h"
#include "runtime/arena.h"

namespace kiln {

namespace {
class CompilingContext : public BuildContext {
 public:
  explicit CompilingContext(const CompiledGraph::PackedLookup& packed) : packed_(packed) {}
  std::shared_ptr<const CompiledGraph> compile(const Graph& body) override { return CompiledGraph::compile(body); }
  const PackedState* packed_state(const Node& node) const override { return packed_ ? packed_(node) : nullptr; }

 private:
  const CompiledGraph::PackedLookup& packed_;
};

// The key of a memory plan: each input's dtype, rank and dims.
std::vector<int64_t> input_signature(const std::vector<Tensor>& inputs) {
  std::vector<int64_t> key;
  for (const Tensor& t : inputs) {
    key.push_back(static_cast<int64_t>(t.dtype()));
    key.push_back(t.rank());
    key.insert(key.end(), t.shape().begin(), t.shape().end());
  }
  return key;
}

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

CompiledGraph::~CompiledGraph() = default;

namespace {

// Frees constants whose every reader's kernel keeps its own copy (packed
// weights) as soon as the last of those kernels exists, so a model's packed
// and original weights are never held in full at the same time.
class OwnedConstantReleaser {
 public:
  explicit OwnedConstantReleaser(Graph* g) : g_(g) {
    if (!g_) return;
    std::unordered_map<const Value*, bool> ineligible;
    for (const auto& n : g_->nodes)
      for (const Value* v : g_->implicit_inputs(*n)) ineligible[v] = true;
    for (const Value* v : g_->outputs) ineligible[v] = true;
    for (const auto& n : g_->nodes)
      for (Value* v : n->inputs)
        if (v && v->initializer && !v->is_graph_input && v->initializer->raw() && !ineligible.count(v))
          ++readers_left_[v];
  }

  void kernel_created(const Node& n, const Kernel& k) {
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      auto it = readers_left_.find(n.inputs[i]);
      if (it == readers_left_.end()) continue;
      Value* v = it->first;
      if (!k.owns_constant_input(i)) not_owned_[v] = true;
      if (--it->second > 0 || not_owned_.count(v)) continue;
      freed_ += v->initializer->nbytes();
      v->initializer = Tensor::wrap(v->initializer->dtype(), v->initializer->shape(), nullptr);
    }
  }
  size_t freed() const { return freed_; }

 private:
  Graph* g_;
  std::unordered_map<Value*, int> readers_left_;
  std::unordered_map<Value*, bool> not_owned_;
  size_t freed_ = 0;
};

}  // namespace

namespace {

// The fault KILN_TEST_PERTURB_NODE injects: the first float output, copied
// (it may be a view of an input or of a read-only weight), gets 1% + 0.01
// added to every element: far beyond any kernel's rounding.
void perturb(std::vector<Tensor>& outs) {
  for (Tensor& t : outs) {
    if (!t.defined() || t.dtype() != DType::kFloat32) continue;
    t = t.clone();
    float* p = t.data<float>();
    for (int64_t k = 0; k < t.numel(); ++k) p[k] += 0.01f * (1.0f + std::fabs(p[k]));
    return;
  }
}

size_t input_bytes(const std::vector<const Tensor*>& inputs) {
  size_t n = 0;
  for (const Tensor* t : inputs)
    if (t && t->dtype() != DType::kString) n += t->nbytes();
  return n;
}

}  // namespace

std::shared_ptr<const CompiledGraph> CompiledGraph::compile(const Graph& graph, bool plan_memory, Graph* free_owned,
                                                            const PackedLookup& packed) {
  if (free_owned && free_owned != &graph) throw Error("compile: free_owned must be the graph being compiled");
  auto cg = std::shared_ptr<CompiledGraph>(new CompiledGraph());
  cg->graph_ = &graph;
  cg->plan_memory_ = plan_memory;
  CompilingContext bc(packed);
  OwnedConstantReleaser releaser(free_owned);
  for (const auto& node : graph.nodes) {
    if (!node->schema) throw Error(node->describe() + ": not resolved (infer_graph must run first)");
    cg->kernels_.push_back(make_kernel(*node, bc));
    releaser.kernel_created(*node, *cg->kernels_.back());
  }
  cg->freed_constant_bytes_ = releaser.freed();
#ifdef KILN_TEST_HOOKS
  if (const std::string& victim = settings().test_perturb_node; !victim.empty())
    for (size_t i = 0; i < graph.nodes.size(); ++i)
      if (graph.nodes[i]->name == victim) cg->perturbed_node_ = static_cast<int>(i);
#endif
  // Last use of each value, so a run can free it early. Graph outputs and
  // initializers are never freed.
  std::unordered_map<const Value*, size_t> last_use;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const Value* in : graph.nodes[i]->inputs)
      if (in) last_use[in] = i;
    for (const Value* in : graph.implicit_inputs(*graph.nodes[i])) last_use[in] = i;
  }
  cg->last_read_.assign(graph.values.size(), -1);
  for (auto& [v, i] : last_use)
    if (v->index >= 0) cg->last_read_[static_cast<size_t>(v->index)] = static_cast<int>(i);
  cg->is_output_.assign(graph.values.size(), false);
  for (const Value* out : graph.outputs) cg->is_output_[static_cast<size_t>(out->index)] = true;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    for (const Value* out : graph.nodes[i]->outputs)
      if (out && !last_use.count(out)) last_use[out] = i;  // produced, never read
  for (const Value* out : graph.outputs) last_use.erase(out);
  cg->frees_.resize(graph.nodes.size());
  for (auto& [v, i] : last_use)
    if (!v->initializer && !v->is_outer && !v->is_graph_input) cg->frees_[i].push_back(v->index);
  return cg;
}

Frame::Frame(const CompiledGraph& cg, const Frame* parent, std::vector<Tensor> reuse)
    : slots(std::move(reuse)), cg_(cg), parent_(parent) {
  slots.resize(cg.graph().values.size());
}

const Tensor* Frame::lookup(const Value* v) const {
  if (!v->is_outer) {
    // Initializers are read in place rather than copied into every frame.
    const Tensor& t = slots[static_cast<size_t>(v->index)];
    if (t.defined()) return &t;
    return v->initializer ? &*v->initializer : nullptr;
  }
  for (const Frame* f = parent_; f; f = f->parent_) {
    const Value* pv = f->cg_.graph().find(v->name);
    if (pv && !pv->is_outer) return f->lookup(pv);
  }
  return nullptr;
}

std::vector<Tensor> CompiledGraph::run(const std::vector<Tensor>& inputs, const Frame* outer, ThreadPool* pool,
                                       NodeTimes* times, int profile) const {
  if (outer) times = nullptr;  // a subgraph's: from its outer frame
  if (times) {
    times->nodes.assign(graph_->nodes.size(), NodeTime{});
    times->bodies.clear();
  }
  if (profile >= 0 && !outer) {
    if (static_cast<size_t>(profile) >= profile_plans_.size())
      throw Error("profile " + std::to_string(profile) + " does not exist (" + std::to_string(profile_plans_.size()) +
                  " profiles)");
    return run_with_plan(inputs, pool, times, *profile_plans_[static_cast<size_t>(profile)]);
  }
  if (plan_memory_ && !outer) return run_planned(inputs, pool, times);
  return run_frame(inputs, outer, pool, nullptr, nullptr, nullptr, times);
}

std::vector<Tensor> CompiledGraph::run_planned(const std::vector<Tensor>& inputs, ThreadPool* pool,
                                               NodeTimes* times) const {
  std::vector<int64_t> key = input_signature(inputs);
  std::shared_ptr<RunPlan> plan;
  bool full = false;
  {
    std::lock_guard<std::mutex> lock(plans_mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) plan = it->second;
    full = plans_.size() >= kMaxPlans;
  }
  if (!plan && full) return run_frame(inputs, nullptr, pool, nullptr, nullptr, nullptr, times);
  if (!plan) {
    // First run with these shapes: heap-allocated, recording what to plan.
    LifetimeRecorder recorder(graph_->values.size());
    std::vector<Tensor> result = run_frame(inputs, nullptr, pool, nullptr, nullptr, &recorder, times);
    std::shared_ptr<RunPlan> made = make_run_plan(recorder.values, last_read_, is_output_);
    std::lock_guard<std::mutex> lock(plans_mu_);
    if (plans_.size() < kMaxPlans)
      plans_.emplace(std::move(key), std::move(made));  // a concurrent first run may have won
    return result;
  }
  return run_with_plan(inputs, pool, times, *plan);
}

std::vector<Tensor> CompiledGraph::run_with_plan(const std::vector<Tensor>& inputs, ThreadPool* pool, NodeTimes* times,
                                                 RunPlan& plan) const {
  std::unique_ptr<RunState> state = plan.acquire();
  // Gives the state back however the run ends.
  struct Release {
    RunPlan& plan;
    std::unique_ptr<RunState>& state;
    ~Release() { plan.release(std::move(state)); }
  } release{plan, state};
  return run_frame(inputs, nullptr, pool, &plan, state.get(), nullptr, times);
}

std::shared_ptr<RunPlan> CompiledGraph::record_plan(const std::vector<Tensor>& inputs, ThreadPool* pool) const {
  LifetimeRecorder recorder(graph_->values.size());
  run_frame(inputs, nullptr, pool, nullptr, nullptr, &recorder, nullptr);
  return make_run_plan(recorder.values, last_read_, is_output_);
}

size_t CompiledGraph::profile_arena_bytes(size_t p) const { return profile_plans_.at(p)->arena_bytes; }

void CompiledGraph::add_profile_plan(std::shared_ptr<RunPlan> plan) {
  if (plan->offset.size() != graph_->values.size() || plan->bytes.size() != graph_->values.size() ||
      plan->root.size() != graph_->values.size())
    throw Error("memory plan for " + std::to_string(plan->offset.size()) + " values, the graph has " +
                std::to_string(graph_->values.size()));
  profile_plans_.push_back(std::move(plan));
}

std::vector<Tensor> CompiledGraph::run_frame(const std::vector<Tensor>& inputs, const Frame* outer, ThreadPool* pool,
                                             const RunPlan* plan, RunState* state, LifetimeRecorder* recorder,
                                             NodeTimes* times) const {
  const Graph& g = *graph_;
  Frame frame(*this, outer, state ? std::move(state->slots) : std::vector<Tensor>{});
  frame.pool_ = pool ? pool : outer ? outer->pool_ : nullptr;
  frame.times_ = outer ? outer->times_ : times;
  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i)
    if (inputs[i].defined()) frame.slots[static_cast<size_t>(g.inputs[i]->index)] = inputs[i];

  RunState local;
  RunState& scratch = state ? *state : local;  // vectors reused across runs when planned
  std::byte* arena = state ? static_cast<std::byte*>(state->arena.raw()) : nullptr;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = *g.nodes[i];
    scratch.in_ptrs.clear();
    for (const Value* in : node.inputs) {
      const Tensor* t = in ? frame.lookup(in) : nullptr;
      if (in && !t) throw Error(node.describe() + ": input '" + in->name + "' has no value");
      scratch.in_ptrs.push_back(t);
    }
    std::vector<Tensor>& outs = scratch.outs;
    outs.assign(node.outputs.size(), Tensor());
    KernelContext ctx(node, scratch.in_ptrs, outs, &frame, frame.pool_, &scratch.kernel_scratch);
    std::vector<OutputBlock>& blocks = scratch.blocks;
    if (plan || recorder) {
      blocks.assign(node.outputs.size(), OutputBlock{});
      for (size_t k = 0; plan && k < node.outputs.size(); ++k) {
        const Value* out = node.outputs[k];
        if (out && plan->offset[static_cast<size_t>(out->index)] >= 0)
          blocks[k] = {arena + plan->offset[static_cast<size_t>(out->index)],
                       plan->bytes[static_cast<size_t>(out->index)]};
      }
      ctx.set_output_blocks(blocks);
    }
    const int64_t start_ns = frame.times_ ? steady_ns() : 0;
    try {
      kernels_[i]->run(ctx);
    } catch (const Error& e) {
      std::string msg = e.what();
      if (msg.find(node.describe()) == std::string::npos) throw Error(node.describe() + ": " + msg);
      throw;
    } catch (const std::bad_alloc&) {  // a kernel's own working buffer: callers are promised a kiln::Error
      throw Error(node.describe() + ": out of memory: a working buffer could not be allocated (" +
                  std::to_string(input_bytes(scratch.in_ptrs)) + " bytes of inputs)");
    } catch (const std::exception& e) {  // oneDNN's: callers are promised a kiln::Error
      throw Error(node.describe() + ": " + e.what());
    }
    if (static_cast<int>(i) == perturbed_node_) perturb(outs);
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (!node.outputs[k]) continue;
      if (!outs[k].defined())
        throw Error(node.describe() + ": kernel produced no value for output " + std::to_string(k));
      const int v = node.outputs[k]->index;
      // A kernel that passed through memory of the arena the plan did not
      // expect (a view it did not make in the recording run) would see that
      // memory reused while the view lives: copy it out instead.
      if (plan && !arena_output_ok(*plan, arena, v, outs[k])) outs[k] = outs[k].clone();
      if (recorder) recorder->produced(static_cast<int>(i), v, outs[k], blocks[k].from_output);
      frame.slots[static_cast<size_t>(v)] = std::move(outs[k]);
    }
    for (int v : frees_[i]) {
      frame.slots[static_cast<size_t>(v)] = Tensor();
      if (recorder) recorder->released(v);
    }
    if (frame.times_) {
      const int64_t end_ns = steady_ns();
      if (outer) {
        BodyNodeTime& b = frame.times_->bodies[&node];
        b.total_ns += end_ns - start_ns;
        ++b.calls;
      } else {
        frame.times_->nodes[i] = {start_ns, end_ns};
      }
    }
  }
  std::vector<Tensor> result;
  for (const Value* out : g.outputs) {
    const Tensor* t = frame.lookup(out);
    if (!t) throw Error("graph output '" + out->name + "' has no value");
    result.push_back(*t);
  }
  if (state) {
    for (Tensor& t : frame.slots) t = Tensor();
    state->slots = std::move(frame.slots);
  }
  return result;
}

CompiledGraph::MemoryStats CompiledGraph::memory_stats() const {
  std::lock_guard<std::mutex> lock(plans_mu_);
  MemoryStats stats;
  for (const auto& [key, plan] : plans_)
    if (plan->arena_bytes >= stats.arena_bytes) stats = {plan->arena_bytes, plan->planned_bytes};
  for (const auto& plan : profile_plans_)
    if (plan->arena_bytes >= stats.arena_bytes) stats = {plan->arena_bytes, plan->planned_bytes};
  return stats;
}

std::vector<Tensor> KernelContext::run_subgraph(const CompiledGraph& body, std::vector<Tensor> inputs) const {
  return body.run(inputs, frame_);
}

}  // namespace kiln
