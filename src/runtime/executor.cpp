#include "runtime/executor.h"

#include <algorithm>
#include <unordered_map>

#include "ir/infer.h"

namespace kiln {

namespace {
class CompilingContext : public BuildContext {
 public:
  std::shared_ptr<const CompiledGraph> compile(const Graph& body) override { return CompiledGraph::compile(body); }
};
}  // namespace

std::shared_ptr<const CompiledGraph> CompiledGraph::compile(const Graph& graph) {
  auto cg = std::shared_ptr<CompiledGraph>(new CompiledGraph());
  cg->graph_ = &graph;
  CompilingContext bc;
  for (const auto& node : graph.nodes) {
    if (!node->schema) throw Error(node->describe() + ": not resolved (infer_graph must run first)");
    cg->kernels_.push_back(make_kernel(*node, bc));
  }
  // Last use of each value, so a run can free it early. Graph outputs and
  // initializers are never freed.
  std::unordered_map<const Value*, size_t> last_use;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
  {
    for (const Value* in : graph.nodes[i]->inputs)
      if (in) last_use[in] = i;
    for (const Value* in : graph.implicit_inputs(*graph.nodes[i])) last_use[in] = i;
  }
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    for (const Value* out : graph.nodes[i]->outputs)
      if (out && !last_use.count(out)) last_use[out] = i;  // produced, never read
  for (const Value* out : graph.outputs) last_use.erase(out);
  cg->frees_.resize(graph.nodes.size());
  for (auto& [v, i] : last_use)
    if (!v->initializer && !v->is_outer && !v->is_graph_input) cg->frees_[i].push_back(v->index);
  return cg;
}

size_t CompiledGraph::release_owned_constants(Graph& g) const {
  if (&g != graph_) throw Error("release_owned_constants: not the compiled graph");
  std::unordered_map<const Node*, size_t> index;
  for (size_t i = 0; i < g.nodes.size(); ++i) index[g.nodes[i].get()] = i;
  std::unordered_map<const Value*, bool> read_by_subgraph;
  for (const auto& n : g.nodes)
    for (const Value* v : g.implicit_inputs(*n)) read_by_subgraph[v] = true;
  size_t freed = 0;
  for (const auto& v : g.values) {
    if (!v->initializer || v->is_graph_input || v->initializer->raw() == nullptr || v->consumers.empty() ||
        read_by_subgraph.count(v.get()) ||
        std::find(g.outputs.begin(), g.outputs.end(), v.get()) != g.outputs.end())
      continue;
    bool owned = true;
    for (const Node* n : v->consumers) {
      auto it = index.find(n);
      if (it == index.end()) owned = false;
      for (size_t k = 0; owned && k < n->inputs.size(); ++k)
        if (n->inputs[k] == v.get() && !kernels_[it->second]->owns_constant_input(k)) owned = false;
      if (!owned) break;
    }
    if (!owned) continue;
    freed += v->initializer->nbytes();
    v->initializer = Tensor::wrap(v->initializer->dtype(), v->initializer->shape(), nullptr);
  }
  return freed;
}

Frame::Frame(const CompiledGraph& cg, const Frame* parent)
    : slots(cg.graph().values.size()), cg_(cg), parent_(parent) {}

const Tensor* Frame::lookup(const Value* v) const {
  if (!v->is_outer) {
    const Tensor& t = slots[static_cast<size_t>(v->index)];
    return t.defined() ? &t : nullptr;
  }
  for (const Frame* f = parent_; f; f = f->parent_) {
    const Value* pv = f->cg_.graph().find(v->name);
    if (pv && !pv->is_outer) return f->lookup(pv);
  }
  return nullptr;
}

std::vector<Tensor> CompiledGraph::run(const std::vector<Tensor>& inputs, const Frame* outer, ThreadPool* pool) const {
  const Graph& g = *graph_;
  Frame frame(*this, outer);
  frame.pool_ = pool ? pool : outer ? outer->pool_ : nullptr;
  for (const auto& v : g.values)
    if (v->initializer) frame.slots[static_cast<size_t>(v->index)] = *v->initializer;
  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i)
    if (inputs[i].defined()) frame.slots[static_cast<size_t>(g.inputs[i]->index)] = inputs[i];

  std::vector<const Tensor*> in_ptrs;
  std::vector<Tensor> outs;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = *g.nodes[i];
    in_ptrs.clear();
    for (const Value* in : node.inputs) {
      const Tensor* t = in ? frame.lookup(in) : nullptr;
      if (in && !t) throw Error(node.describe() + ": input '" + in->name + "' has no value");
      in_ptrs.push_back(t);
    }
    outs.assign(node.outputs.size(), Tensor());
    KernelContext ctx(node, in_ptrs, outs, &frame, frame.pool_);
    try {
      kernels_[i]->run(ctx);
    } catch (const Error& e) {
      std::string msg = e.what();
      if (msg.find(node.describe()) == std::string::npos) throw Error(node.describe() + ": " + msg);
      throw;
    }
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (!node.outputs[k]) continue;
      if (!outs[k].defined()) throw Error(node.describe() + ": kernel produced no value for output " + std::to_string(k));
      frame.slots[static_cast<size_t>(node.outputs[k]->index)] = std::move(outs[k]);
    }
    for (int v : frees_[i]) frame.slots[static_cast<size_t>(v)] = Tensor();
  }
  std::vector<Tensor> result;
  for (const Value* out : g.outputs) {
    const Tensor* t = frame.lookup(out);
    if (!t) throw Error("graph output '" + out->name + "' has no value");
    result.push_back(*t);
  }
  return result;
}

std::vector<Tensor> KernelContext::run_subgraph(const CompiledGraph& body, std::vector<Tensor> inputs) const {
  return body.run(inputs, frame_);
}

}  // namespace kiln
